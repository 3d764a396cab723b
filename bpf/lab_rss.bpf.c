// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * lab_rss: receive-side scaling for the veth lab, done on the sending side.
 *
 * veth has no RSS: a frame reaches the peer's receive queue numbered like the transmit queue
 * the sender's kernel picked. For a connected socket that queue comes from the socket's random
 * txhash; for what the kernel sends without a socket (a RST to a closed port, a TIME-WAIT ACK)
 * from the flow's skb hash. The two differ, so with several queues such replies can reach a
 * worker that does not know the connection, which a NIC hashing the 4-tuple never does.
 *
 * scripts/lab.sh attaches this program to the client's veth at tc egress, first in line
 * (priority 1), when the lab has more than one queue. For TCP over IPv4 or IPv6 it sets the skb's hash to a hash of the 4-tuple
 * (bpf_set_hash); the kernel's skb_tx_hash() then picks the transmit queue from it for every
 * skb without a cached queue: the control socket's replies always, a socket's first packet
 * (whose queue the socket then keeps) and any later one it may move. The hash stays on the skb,
 * so a packet that leaves again later without passing tc (an ifb that delayed it, say) keeps
 * its queue too. Everything else passes untouched, and every packet goes on to the filters
 * after it (the program returns TC_ACT_UNSPEC: tests add their own, e.g. a loss emulation).
 * Built by lab.sh with clang; no libbpf headers needed.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>

#define SEC(name) __attribute__((section(name), used))

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "lab_rss assumes a little-endian host"
#endif
#define BE16(x) __builtin_bswap16(x)

/* The bpf_set_hash() helper (linux/bpf.h's BPF_FUNC_set_hash), declared as libbpf would. */
static long (*bpf_set_hash)(struct __sk_buff *skb, __u32 hash) = (void *)BPF_FUNC_set_hash;

/* Mixes a 32-bit word into h (the murmur3 finaliser's steps). */
static __attribute__((always_inline)) __u32 mix(__u32 h, __u32 w)
{
	h ^= w;
	h *= 0x85ebca6bU;
	h ^= h >> 13;
	return h;
}

SEC("tc")
int lab_rss(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct tcphdr *tcp;
	__u32 h = 0x9e3779b9U;

	if ((void *)(eth + 1) > end)
		return TC_ACT_UNSPEC;
	if (eth->h_proto == BE16(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_TCP || ip->ihl != 5)
			return TC_ACT_UNSPEC;
		h = mix(mix(h, ip->saddr), ip->daddr);
		tcp = (void *)(ip + 1);
	} else if (eth->h_proto == BE16(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_TCP)
			return TC_ACT_UNSPEC;
#pragma unroll
		for (int i = 0; i < 4; i++)
			h = mix(mix(h, ip6->saddr.in6_u.u6_addr32[i]), ip6->daddr.in6_u.u6_addr32[i]);
		tcp = (void *)(ip6 + 1);
	} else {
		return TC_ACT_UNSPEC;
	}
	if ((void *)(tcp + 1) > end)
		return TC_ACT_UNSPEC;
	h = mix(h, ((__u32)tcp->source << 16) | tcp->dest);
	h ^= h >> 16;
	bpf_set_hash(skb, h);
	return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";

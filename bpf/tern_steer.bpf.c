// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * tern_steer: the XDP program in front of tern's AF_XDP sockets.
 *
 * A TCP packet whose destination (address, port) is in tern_listeners, either exactly or through
 * the wildcard (the unspecified address of its family), is redirected into the AF_XDP socket
 * registered in tern_xsks for the queue it arrived on. Everything else passes to the kernel
 * untouched: ARP, ICMP, SSH, all other addresses and ports.
 *
 * What is parsed:
 *   Ethernet, with at most one IEEE 802.1Q tag (QinQ passes, as tern-wire refuses it).
 *   IPv4 with any options (skipped, never read). Fragments are never steered: every IPv4 fragment
 *     carrying TCP passes to the kernel, which reassembles and answers it.
 *   IPv6 fixed header. A next header other than TCP passes, extension headers included: walking
 *     the chain costs a loop per packet for traffic tern's peers do not send, so a TCP segment
 *     behind a Hop-by-Hop, Routing, Fragment or Destination Options header reaches the kernel
 *     (which answers a SYN with a RST when nothing listens there). Counted as IPV6_EXT_PASSED.
 *   TCP: the destination port picks the listener; the data offset is checked, options are not
 *     read (the worker parses them with tern-wire, checksums included).
 *
 * A packet is "for a listener" once its destination address and port are readable and found in
 * the map. Only then is it judged: a malformed one (IPv4 IHL below 5, an IP length that disagrees
 * with the frame, a TCP header shorter than 20 bytes, a data offset below 5 or past the segment)
 * is dropped and counted by reason, so the workers never see it and the kernel never answers it.
 * When IHL is below 5 the ports are looked for where a header without options ends. Packets not
 * for a listener pass even when malformed: the kernel's own checks and counters deal with them.
 *
 * A packet for a listener is redirected with bpf_redirect_map(), whose fallback action applies
 * when the queue's XSKMAP slot is empty: XDP_PASS, or XDP_DROP for a listener flagged
 * TERN_LISTENER_F_DROP_NO_XSK. Failures after the program returns (a full RX ring, say) are
 * counted by the kernel against the socket (XDP_STATISTICS rx_dropped / rx_ring_full), not here.
 *
 * Each packet increments exactly one per-CPU counter (enum tern_counter in tern_abi.h).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "parsing.h"
#include "tern_abi.h"

/* IPv4 flags/fragment-offset field: More Fragments and the offset (RFC 791). */
#define IPV4_MF 0x2000
#define IPV4_OFFSET 0x1fff

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct tern_listener_key);
	__type(value, struct tern_listener_value);
	__uint(max_entries, TERN_MAX_LISTENERS);
} tern_listeners SEC(".maps");

/* Slot i holds the AF_XDP socket bound to receive queue i, or nothing. */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(max_entries, TERN_MAX_QUEUES);
} tern_xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, TERN_CTR_COUNT);
} tern_counters SEC(".maps");

/* Counts one packet and returns the action taken on it. */
static __always_inline int count(__u32 counter, int action)
{
	__u64 *value = bpf_map_lookup_elem(&tern_counters, &counter);

	if (value)
		*value += 1; /* per-CPU: no other writer */
	return action;
}

/* What the IP layer found about a TCP packet that may be for a listener. */
struct candidate {
	struct tern_listener_key key; /* destination address and family; port from TCP */
	void *tcp;                    /* where the TCP header starts */
	__u32 seg_len;                /* TCP segment length the IP header claims */
	__u32 defect;                 /* counter of an IP-level defect, or 0 */
};

/* parse_ipv4/parse_ipv6 return this for a candidate, or the counter to pass the packet with. */
#define CANDIDATE 0xffffffffU

/* Returns the EtherType after at most one 802.1Q tag, in host order; 0 for a truncated frame. */
static __always_inline __u16 parse_ethernet(struct hdr_cursor *c)
{
	struct ethhdr *eth = cursor_take(c, sizeof(*eth));
	struct vlan_tag *tag;
	__be16 proto;

	if (!eth)
		return 0;
	proto = eth->h_proto;
	if (proto == bpf_htons(TPID_8021Q)) {
		tag = cursor_take(c, sizeof(*tag));
		if (!tag)
			return 0;
		proto = tag->encapsulated_proto;
	}
	return bpf_ntohs(proto);
}

static __always_inline __u32 parse_ipv4(struct hdr_cursor *c, struct candidate *cand)
{
	struct iphdr *iph = cursor_take(c, sizeof(*iph));
	__u32 hdr_len, tot_len;

	if (!iph || iph->version != 4 || iph->protocol != IPPROTO_TCP)
		return TERN_CTR_PASSED;
	if (iph->frag_off & bpf_htons(IPV4_MF | IPV4_OFFSET))
		return TERN_CTR_FRAGMENT_PASSED;

	/* RFC 4291 2.5.5.2: ::ffff:a.b.c.d */
	cand->key.family = TERN_FAMILY_IPV4;
	cand->key.addr[10] = 0xff;
	cand->key.addr[11] = 0xff;
	__builtin_memcpy(&cand->key.addr[12], &iph->daddr, sizeof(iph->daddr));

	hdr_len = iph->ihl * 4;
	if (hdr_len < sizeof(*iph)) {
		cand->defect = TERN_CTR_DROP_IP_HEADER;
		hdr_len = sizeof(*iph);
	}
	cand->tcp = (void *)iph + hdr_len;

	tot_len = bpf_ntohs(iph->tot_len);
	if (tot_len < hdr_len) {
		if (!cand->defect)
			cand->defect = TERN_CTR_DROP_IP_LENGTH;
		tot_len = hdr_len;
	} else if (!in_frame(c, iph, tot_len) && !cand->defect) {
		/* Ethernet padding makes a frame longer than its packet, never shorter. */
		cand->defect = TERN_CTR_DROP_IP_LENGTH;
	}
	cand->seg_len = tot_len - hdr_len;
	return CANDIDATE;
}

/* Next-header values that announce an IPv6 extension header (RFC 8200 4, RFC 7045). */
static __always_inline int ipv6_is_extension(__u8 next)
{
	switch (next) {
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_FRAGMENT:
	case IPPROTO_ESP:
	case IPPROTO_AH:
	case IPPROTO_DSTOPTS:
	case IPPROTO_MH:
	case 139: /* HIP */
	case 140: /* Shim6 */
	case 253: /* experimentation (RFC 3692) */
	case 254:
		return 1;
	default:
		return 0;
	}
}

static __always_inline __u32 parse_ipv6(struct hdr_cursor *c, struct candidate *cand)
{
	struct ipv6hdr *ip6h = cursor_take(c, sizeof(*ip6h));
	__u32 payload_len;

	if (!ip6h || ip6h->version != 6)
		return TERN_CTR_PASSED;
	if (ip6h->nexthdr != IPPROTO_TCP)
		return ipv6_is_extension(ip6h->nexthdr) ? TERN_CTR_IPV6_EXT_PASSED : TERN_CTR_PASSED;

	cand->key.family = TERN_FAMILY_IPV6;
	__builtin_memcpy(cand->key.addr, &ip6h->daddr, sizeof(cand->key.addr));
	cand->tcp = ip6h + 1;

	payload_len = bpf_ntohs(ip6h->payload_len);
	if (!in_frame(c, ip6h + 1, payload_len))
		cand->defect = TERN_CTR_DROP_IP_LENGTH;
	cand->seg_len = payload_len;
	return CANDIDATE;
}

/* The listener for key: the exact address first, then the wildcard of the key's family. */
static __always_inline struct tern_listener_value *lookup_listener(const struct tern_listener_key *key)
{
	struct tern_listener_value *listener;
	struct tern_listener_key wildcard = {
		.port = key->port,
		.family = key->family,
	};

	listener = bpf_map_lookup_elem(&tern_listeners, key);
	if (listener)
		return listener;
	if (key->family == TERN_FAMILY_IPV4) {
		wildcard.addr[10] = 0xff;
		wildcard.addr[11] = 0xff;
	}
	return bpf_map_lookup_elem(&tern_listeners, &wildcard);
}

/* Sends a well-formed packet for a listener to the socket of its receive queue. */
static __always_inline int steer(struct xdp_md *ctx, const struct tern_listener_value *listener)
{
	__u64 fallback = (listener->flags & TERN_LISTENER_F_DROP_NO_XSK) ? XDP_DROP : XDP_PASS;
	int action = bpf_redirect_map(&tern_xsks, ctx->rx_queue_index, fallback);

	if (action == XDP_REDIRECT)
		return count(TERN_CTR_REDIRECTED, action);
	if (action == XDP_DROP)
		return count(TERN_CTR_NO_XSK_DROPPED, action);
	return count(TERN_CTR_NO_XSK_PASSED, action);
}

SEC("xdp")
int tern_steer(struct xdp_md *ctx)
{
	struct hdr_cursor c = {
		.pos = (void *)(long)ctx->data,
		.end = (void *)(long)ctx->data_end,
	};
	struct candidate cand = {};
	struct tern_listener_value *listener;
	struct tcphdr *tcp;
	__u32 verdict, data_offset;

	switch (parse_ethernet(&c)) {
	case ETH_P_IP:
		verdict = parse_ipv4(&c, &cand);
		break;
	case ETH_P_IPV6:
		verdict = parse_ipv6(&c, &cand);
		break;
	default:
		return count(TERN_CTR_PASSED, XDP_PASS);
	}
	if (verdict != CANDIDATE)
		return count(verdict, XDP_PASS);

	/* The ports decide whether the packet is ours; without them it is not provably so. */
	tcp = cand.tcp;
	if (!in_frame(&c, tcp, 4))
		return count(TERN_CTR_PASSED, XDP_PASS);
	cand.key.port = tcp->dest;
	listener = lookup_listener(&cand.key);
	if (!listener)
		return count(TERN_CTR_PASSED, XDP_PASS);

	/* Ours: judge it. */
	if (cand.defect)
		return count(cand.defect, XDP_DROP);
	if (cand.seg_len < sizeof(*tcp) || !in_frame(&c, tcp, sizeof(*tcp)))
		return count(TERN_CTR_DROP_TCP_TRUNCATED, XDP_DROP);
	data_offset = tcp->doff * 4;
	if (data_offset < sizeof(*tcp) || data_offset > cand.seg_len)
		return count(TERN_CTR_DROP_TCP_DATA_OFFSET, XDP_DROP);

	return steer(ctx, listener);
}

/* GPL-compatible, so the kernel offers every helper; the source is also MIT (see SPDX above). */
char LICENSE[] SEC("license") = "Dual MIT/GPL";

// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * tern_flood: tern-bench's in-kernel flood generator, run through BPF_PROG_RUN with
 * BPF_F_TEST_XDP_LIVE_FRAMES (Linux 5.18+).
 *
 * In live-frames mode the kernel copies one frame template (data_in) into a page pool, runs this
 * program over each frame, `repeat` times, and sends the frames it returns with XDP_TX out of
 * the interface named in the context's ingress_ifindex (through that driver's ndo_xdp_xmit, the
 * path XDP_REDIRECT takes). Nothing is attached anywhere and no socket or ring is involved: the
 * cost per packet is this program plus the driver's transmit.
 *
 * Per frame the program draws a source address inside the configured prefix, a source port, a
 * sequence number and, where the shape has them, an acknowledgment number and TSval/TSecr, writes
 * them over the template's values and patches both checksums incrementally (RFC 1624 eqn. 3)
 * from bases user space computed once: no loop over the frame. Recycled pages may still hold the
 * previous frame's values; that does not matter, as every changing field is rewritten and the
 * checksums are computed from the template's base, never from what the page holds.
 *
 * Random numbers come from bpf_get_prandom_u32() (the kernel's per-CPU PRNG), so a flood is not
 * reproducible frame by frame, unlike the AF_XDP path's seeded generator.
 */
#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "tern_flood_abi.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct tern_flood_config);
	__uint(max_entries, 1);
} tern_flood_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, TERN_FLOOD_CTR_COUNT);
} tern_flood_counters SEC(".maps");

/* Frames are short (the longest template is 94 bytes); offsets are bounded by this mask so the
 * verifier can check each variable-offset store against data_end. */
#define OFFSET_MASK 0xff

static __always_inline int count(__u32 counter, int action)
{
	__u64 *value = bpf_map_lookup_elem(&tern_flood_counters, &counter);

	if (value)
		*value += 1; /* per-CPU: no other writer */
	return action;
}

/* Writes v (host order) big-endian at off and adds its two 16-bit words to *sum. */
static __always_inline int put32(void *data, void *data_end, __u32 off, __u32 v, __u32 *sum)
{
	__u8 *p = (__u8 *)data + (off & OFFSET_MASK);

	if ((void *)(p + 4) > data_end)
		return -1;
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
	*sum += (v >> 16) + (v & 0xffff);
	return 0;
}

/* Writes v (host order) big-endian at off. */
static __always_inline int put16(void *data, void *data_end, __u32 off, __u16 v)
{
	__u8 *p = (__u8 *)data + (off & OFFSET_MASK);

	if ((void *)(p + 2) > data_end)
		return -1;
	p[0] = v >> 8;
	p[1] = v;
	return 0;
}

/* The one's complement of the 16-bit one's complement sum of sum's halves. */
static __always_inline __u16 finish(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum & 0xffff;
}

SEC("xdp")
int tern_flood(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct tern_flood_config *c;
	__u32 zero = 0, tcp, ip, r;
	int bad = 0;

	c = bpf_map_lookup_elem(&tern_flood_config, &zero);
	if (!c || data + c->frame_len > data_end)
		return count(TERN_FLOOD_CTR_ABORTED, XDP_ABORTED);
	tcp = c->tcp_base;
	ip = c->ip_base;

#pragma unroll
	for (__u32 i = 0; i < 4; i++) {
		if (i < c->addr_words) {
			__u32 mask = c->addr_random[i];
			__u32 word = (c->addr_fixed[i] & ~mask) | (bpf_get_prandom_u32() & mask);

			bad |= put32(data, data_end, c->src_addr + 4 * i, word, &tcp);
			ip += (word >> 16) + (word & 0xffff);
		}
	}
	r = c->port_span ? bpf_get_prandom_u32() % c->port_span : 0;
	bad |= put16(data, data_end, c->src_port, c->port_min + r);
	tcp += (c->port_min + r) & 0xffff;
	bad |= put32(data, data_end, c->seq, bpf_get_prandom_u32(), &tcp);
	if (c->ack)
		bad |= put32(data, data_end, c->ack, bpf_get_prandom_u32(), &tcp);
	if (c->tsval)
		bad |= put32(data, data_end, c->tsval, bpf_get_prandom_u32(), &tcp);
	if (c->tsecr)
		bad |= put32(data, data_end, c->tsecr, bpf_get_prandom_u32(), &tcp);
	bad |= put16(data, data_end, c->tcp_checksum, finish(tcp));
	if (c->ip_checksum)
		bad |= put16(data, data_end, c->ip_checksum, finish(ip));
	if (bad)
		return count(TERN_FLOOD_CTR_ABORTED, XDP_ABORTED);
	return count(TERN_FLOOD_CTR_BUILT, XDP_TX);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * The ABI between tern_flood.bpf.c and its loader, crates/tern-bpf/src/flood.rs.
 *
 * User space builds one frame template (crates/tern-bench/src/frames.rs) and describes here
 * where its per-packet fields are and what the checksums sum to without them; the program only
 * writes those fields and adds them to the sums (RFC 1624 eqn. 3). flood.rs mirrors this struct
 * with #[repr(C)] and asserts the same size. Change both files together.
 */
#ifndef TERN_FLOOD_ABI_H
#define TERN_FLOOD_ABI_H

#include <linux/types.h>

/*
 * The one entry of tern_flood_config. Offsets count bytes from the start of the frame; an
 * optional field is absent when its offset is 0 (the Ethernet destination lives there, so no
 * real field can). Every offset plus its field's width is at most frame_len, which the loader
 * checks and the program checks again against the frame it is given.
 */
struct tern_flood_config {
	__u32 frame_len;
	__u32 addr_words;    /* source address width in 32-bit words: 1 (IPv4) or 4 (IPv6) */
	__u32 src_addr;      /* offset of the source address */
	__u32 ip_checksum;   /* offset of the IPv4 header checksum; 0 for IPv6 */
	__u32 src_port;
	__u32 seq;
	__u32 ack;           /* 0: the shape has no random acknowledgment number */
	__u32 tsval;         /* 0: no timestamps option */
	__u32 tsecr;         /* 0: TSecr stays as in the template */
	__u32 tcp_checksum;
	__u32 tcp_base;      /* ~HC + sum of ~m over the template's changing fields, folded to 16 bits */
	__u32 ip_base;       /* the same for the IPv4 header checksum (source address only) */
	__u32 addr_fixed[4]; /* the source prefix, word i in host order (word 0 first on the wire) */
	__u32 addr_random[4];/* per word, the bits drawn at random (the host part of the prefix) */
	__u32 port_min;      /* source ports are port_min + r % port_span */
	__u32 port_span;
};

/* Per-CPU counters in tern_flood_counters. */
enum tern_flood_counter {
	/* Frames built and returned with XDP_TX (the kernel then transmits or drops them). */
	TERN_FLOOD_CTR_BUILT = 0,
	/* Frames refused because the config does not fit the frame: a loader bug, never expected. */
	TERN_FLOOD_CTR_ABORTED = 1,
	TERN_FLOOD_CTR_COUNT = 2,
};

_Static_assert(sizeof(struct tern_flood_config) == 88, "tern flood ABI: sizeof(config) == 88");

#endif /* TERN_FLOOD_ABI_H */

/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * The ABI between tern_steer.bpf.c and its loader, crates/tern-bpf/src/abi.rs.
 *
 * Everything user space writes into or reads out of a map is defined here, once. abi.rs mirrors
 * each struct with #[repr(C)] and each enum with the same values; both sides assert the sizes and
 * offsets at compile time, and the loader checks the map geometry (key, value and entry counts)
 * against its own types when it loads the object. Change both files together.
 */
#ifndef TERN_ABI_H
#define TERN_ABI_H

#include <linux/types.h>

/* Address families in tern_listener_key.family (the IP version numbers, not AF_* values). */
#define TERN_FAMILY_IPV4 4
#define TERN_FAMILY_IPV6 6

/*
 * Key of the listener map: a destination the daemon terminates.
 *
 * addr holds an IPv6 address, or an IPv4 address mapped as ::ffff:a.b.c.d (RFC 4291 2.5.5.2).
 * The wildcard of a family is its unspecified address (:: or ::ffff:0.0.0.0) with that family, so
 * an IPv4 wildcard never matches IPv6 traffic and the reverse. port is in network byte order, as
 * it appears in the TCP header. pad must be zero: the key is hashed as bytes.
 */
struct tern_listener_key {
	__u8 addr[16];
	__be16 port;
	__u8 family;
	__u8 pad;
};

/*
 * Listener flag: when the receive queue has no socket in its XSKMAP slot, drop the packet instead
 * of passing it to the kernel. Without it a packet for the daemon arriving on a queue no worker
 * serves (or between a worker's exit and its restart) reaches the kernel, which answers with a
 * RST if nothing listens there; a daemon that owns the port outright sets this flag so the kernel
 * never speaks for it.
 */
#define TERN_LISTENER_F_DROP_NO_XSK (1U << 0)

/* Value of the listener map. */
struct tern_listener_value {
	__u32 flags; /* TERN_LISTENER_F_* */
};

/*
 * Indices of the per-CPU counter array. Every packet the program sees increments exactly one of
 * them, so their sum is the number of packets seen.
 */
enum tern_counter {
	/* Not for a listener (not IP, not TCP, another address or port): passed to the kernel. */
	TERN_CTR_PASSED = 0,
	/* For a listener: redirected into the AF_XDP socket of its receive queue. */
	TERN_CTR_REDIRECTED = 1,
	/* For a listener, but the queue's XSKMAP slot was empty: passed to the kernel. */
	TERN_CTR_NO_XSK_PASSED = 2,
	/* For a listener flagged TERN_LISTENER_F_DROP_NO_XSK, and the slot was empty: dropped. */
	TERN_CTR_NO_XSK_DROPPED = 3,
	/* An IPv4 fragment carrying TCP: passed to the kernel, which reassembles. */
	TERN_CTR_FRAGMENT_PASSED = 4,
	/* IPv6 with an extension header before TCP (or none we know): passed to the kernel. */
	TERN_CTR_IPV6_EXT_PASSED = 5,
	/* For a listener, dropped: fewer than 20 bytes of TCP header in the IP payload. */
	TERN_CTR_DROP_TCP_TRUNCATED = 6,
	/* For a listener, dropped: TCP data offset below 5, or past the end of the segment. */
	TERN_CTR_DROP_TCP_DATA_OFFSET = 7,
	/* For a listener, dropped: IPv4 IHL below 5 (ports read where a bare header would end). */
	TERN_CTR_DROP_IP_HEADER = 8,
	/* For a listener, dropped: IPv4 total length or IPv6 payload length disagrees with the frame. */
	TERN_CTR_DROP_IP_LENGTH = 9,
	TERN_CTR_COUNT = 10,
};

/* Capacities of the maps; the loader reads them back from the object. */
#define TERN_MAX_LISTENERS 1024
#define TERN_MAX_QUEUES 256

/* The size of each ABI type is part of the contract; abi.rs asserts the same numbers. */
#define TERN_ASSERT_ABI(cond, what) _Static_assert(cond, "tern ABI: " what)
TERN_ASSERT_ABI(sizeof(struct tern_listener_key) == 20, "sizeof(tern_listener_key) == 20");
TERN_ASSERT_ABI(__builtin_offsetof(struct tern_listener_key, port) == 16,
		"tern_listener_key.port at 16");
TERN_ASSERT_ABI(__builtin_offsetof(struct tern_listener_key, family) == 18,
		"tern_listener_key.family at 18");
TERN_ASSERT_ABI(__builtin_offsetof(struct tern_listener_key, pad) == 19,
		"tern_listener_key.pad at 19");
TERN_ASSERT_ABI(sizeof(struct tern_listener_value) == 4, "sizeof(tern_listener_value) == 4");
TERN_ASSERT_ABI(TERN_CTR_COUNT == 10, "ten counters");

#endif /* TERN_ABI_H */

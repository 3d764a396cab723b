/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Bounded header parsing for XDP: a cursor over [data, data_end) that hands out a header only
 * after proving it lies inside the frame, in the form the verifier can follow (a packet pointer
 * plus a bounded length compared against data_end right before use).
 */
#ifndef TERN_PARSING_H
#define TERN_PARSING_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>

/* The unparsed rest of a frame. */
struct hdr_cursor {
	void *pos;
	void *end;
};

/* IEEE 802.1Q tag as it follows the MAC addresses (the kernel's struct vlan_hdr is not UAPI). */
struct vlan_tag {
	__be16 tci;
	__be16 encapsulated_proto;
};

#define TPID_8021Q 0x8100

/* Whether `len` bytes starting at `p` lie inside the frame. */
static __always_inline int in_frame(const struct hdr_cursor *c, const void *p, __u32 len)
{
	return p + len <= c->end;
}

/*
 * A pointer to the next `len` bytes, advancing the cursor past them; NULL (cursor unmoved) when
 * the frame ends first. `len` must be a constant or bounded so the verifier can check the access.
 */
static __always_inline void *cursor_take(struct hdr_cursor *c, __u32 len)
{
	void *p = c->pos;

	if (p + len > c->end)
		return NULL;
	c->pos = p + len;
	return p;
}

#endif /* TERN_PARSING_H */

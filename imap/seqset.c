/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * seqset.c: ImapUidSet, a set of UIDs kept as a sorted array of disjoint, non-adjacent
 * ranges, and the strict RFC 3501 sequence-set syntax in both directions. Appending
 * ascending UIDs is O(1) amortized; other inserts are a binary search plus a memmove.
 * No locking: a set belongs to one thread at a time.
 */
#define G_LOG_DOMAIN "imapfs-imap"

#include "config.h"

#include <string.h>

#include "imap.h"

typedef struct {
	guint32 first, last; /* first <= last, both >= 1 */
} Range;

struct _ImapUidSet {
	GArray *ranges; /* of Range: sorted; r[i].last + 1 < r[i+1].first */
};

static inline Range *
range_at(const ImapUidSet *set, guint i)
{
	return &g_array_index(set->ranges, Range, i);
}

ImapUidSet *
imap_uidset_new(void)
{
	ImapUidSet *set = g_new0(ImapUidSet, 1);

	set->ranges = g_array_new(FALSE, FALSE, sizeof(Range));
	return set;
}

void
imap_uidset_free(ImapUidSet *set)
{
	if (!set)
		return;
	g_array_unref(set->ranges);
	g_free(set);
}

ImapUidSet *
imap_uidset_dup(const ImapUidSet *set)
{
	ImapUidSet *copy;

	g_return_val_if_fail(set != NULL, NULL);
	copy = imap_uidset_new();
	if (set->ranges->len)
		g_array_append_vals(copy->ranges, set->ranges->data, set->ranges->len);
	return copy;
}

/* Index of the first range whose last >= uid (ranges->len when none). */
static guint
lower_bound(const ImapUidSet *set, guint32 uid)
{
	guint lo = 0, hi = set->ranges->len;

	while (lo < hi) {
		guint mid = lo + (hi - lo) / 2;

		if (range_at(set, mid)->last < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void
imap_uidset_add_range(ImapUidSet *set, guint32 first, guint32 last)
{
	guint n, i, j;
	Range *r;

	g_return_if_fail(set != NULL);
	if (first > last) {
		guint32 t = first;

		first = last;
		last = t;
	}
	g_return_if_fail(first != 0);

	n = set->ranges->len;
	/* Fast path: at or just after the end (ascending adds). */
	if (n == 0 ||
	    (range_at(set, n - 1)->last < G_MAXUINT32 && first > range_at(set, n - 1)->last + 1)) {
		Range nr = {first, last};

		g_array_append_val(set->ranges, nr);
		return;
	}
	r = range_at(set, n - 1);
	if (first >= r->first) {
		if (last > r->last)
			r->last = last;
		return;
	}

	/* General case: ranges i..j-1 touch or overlap [first, last]; merge them. */
	i = lower_bound(set, first - 1); /* first range with last + 1 >= first */
	j = i;
	while (j < n && (last == G_MAXUINT32 || range_at(set, j)->first <= last + 1))
		j++;
	if (i == j) {
		Range nr = {first, last};

		g_array_insert_val(set->ranges, i, nr);
		return;
	}
	r = range_at(set, i);
	if (first < r->first)
		r->first = first;
	r->last = MAX(last, range_at(set, j - 1)->last);
	if (j - i > 1)
		g_array_remove_range(set->ranges, i + 1, j - i - 1);
}

void
imap_uidset_add(ImapUidSet *set, guint32 uid)
{
	imap_uidset_add_range(set, uid, uid);
}

gboolean
imap_uidset_contains(const ImapUidSet *set, guint32 uid)
{
	guint i;

	g_return_val_if_fail(set != NULL, FALSE);
	i = lower_bound(set, uid);
	return i < set->ranges->len && range_at(set, i)->first <= uid;
}

guint64
imap_uidset_count(const ImapUidSet *set)
{
	guint64 n = 0;

	g_return_val_if_fail(set != NULL, 0);
	for (guint i = 0; i < set->ranges->len; i++)
		n += (guint64)range_at(set, i)->last - range_at(set, i)->first + 1;
	return n;
}

gboolean
imap_uidset_is_empty(const ImapUidSet *set)
{
	g_return_val_if_fail(set != NULL, TRUE);
	return set->ranges->len == 0;
}

static void
append_uid(GString *s, guint32 uid)
{
	if (uid == G_MAXUINT32)
		g_string_append_c(s, '*');
	else
		g_string_append_printf(s, "%u", uid);
}

char *
imap_uidset_to_string(const ImapUidSet *set)
{
	GString *s;

	g_return_val_if_fail(set != NULL, NULL);
	s = g_string_sized_new(16 * set->ranges->len + 1);
	for (guint i = 0; i < set->ranges->len; i++) {
		const Range *r = range_at(set, i);

		if (i)
			g_string_append_c(s, ',');
		append_uid(s, r->first);
		if (r->last != r->first) {
			g_string_append_c(s, ':');
			append_uid(s, r->last);
		}
	}
	return g_string_free(s, FALSE);
}

/* seq-number = nz-number / "*"; nz-number = digit-nz *DIGIT, at most 2^32-1. */
static gboolean
parse_number(const char **pp, guint32 *out)
{
	const char *p = *pp;
	guint64 v = 0;

	if (*p == '*') {
		*out = G_MAXUINT32;
		*pp = p + 1;
		return TRUE;
	}
	if (*p < '1' || *p > '9')
		return FALSE;
	while (*p >= '0' && *p <= '9') {
		v = v * 10 + (guint64)(*p - '0');
		if (v > G_MAXUINT32)
			return FALSE;
		p++;
	}
	*out = (guint32)v;
	*pp = p;
	return TRUE;
}

ImapUidSet *
imap_uidset_parse(const char *text, GError **error)
{
	g_autoptr(ImapUidSet) set = NULL;
	const char *p = text;

	g_return_val_if_fail(text != NULL, NULL);

	set = imap_uidset_new();
	for (;;) {
		guint32 a, b;

		if (!parse_number(&p, &a))
			goto fail;
		b = a;
		if (*p == ':') {
			p++;
			if (!parse_number(&p, &b))
				goto fail;
		}
		imap_uidset_add_range(set, a, b);
		if (*p == '\0')
			break;
		if (*p != ',')
			goto fail;
		p++;
	}
	return g_steal_pointer(&set);

fail:
	g_set_error(error, IMAP_ERROR, IMAP_ERROR_PROTOCOL,
		    "invalid sequence set at offset %" G_GSIZE_FORMAT, (gsize)(p - text));
	return NULL;
}

void
imap_uidset_foreach(const ImapUidSet *set, gboolean (*fn)(guint32 uid, gpointer data),
		    gpointer data)
{
	g_return_if_fail(set != NULL && fn != NULL);
	for (guint i = 0; i < set->ranges->len; i++) {
		Range r = *range_at(set, i);

		for (guint32 uid = r.first;; uid++) {
			if (!fn(uid, data))
				return;
			if (uid == r.last)
				break;
		}
	}
}

GPtrArray *
imap_uidset_split(const ImapUidSet *set, guint max_count)
{
	GPtrArray *out;
	ImapUidSet *cur = NULL;
	guint64 in_cur = 0;

	g_return_val_if_fail(set != NULL, NULL);
	g_return_val_if_fail(max_count > 0, NULL);

	out = g_ptr_array_new_with_free_func((GDestroyNotify)imap_uidset_free);
	for (guint i = 0; i < set->ranges->len; i++) {
		Range r = *range_at(set, i);

		for (;;) {
			guint64 left = (guint64)r.last - r.first + 1;
			guint64 room, take;

			if (!cur) {
				cur = imap_uidset_new();
				g_ptr_array_add(out, cur);
				in_cur = 0;
			}
			room = max_count - in_cur;
			take = MIN(left, room);
			{
				Range piece = {r.first, (guint32)(r.first + take - 1)};

				g_array_append_val(cur->ranges, piece);
			}
			in_cur += take;
			if (in_cur == max_count)
				cur = NULL;
			if (take == left)
				break;
			r.first += (guint32)take;
		}
	}
	return out;
}

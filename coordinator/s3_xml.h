/*
 * A small, bounded extractor for the few XML elements S3 answers with: UploadId, Error/Code and
 * Error/Message, and the Key and Size of each Contents entry of a ListObjectsV2 page. It is not a
 * general XML parser. The body comes from the network, so the extractor is strict and bounded:
 *
 *   - the whole fragment is checked before anything is returned: tags balanced and matched, at
 *     most S3_XML_MAX_DEPTH levels, names of at most S3_XML_MAX_NAME bytes, nothing after the
 *     end, no NUL byte, no control character XML forbids;
 *   - DOCTYPE, CDATA and any other "<!" construct except comments are refused, so there are no
 *     entity declarations to expand: only the five predefined entities and numeric character
 *     references are decoded, each into at most 4 bytes of UTF-8;
 *   - a value is copied into the caller's fixed buffer and refused (PGS_ELIMIT) when it does not
 *     fit; an element asked for as text that holds child elements is refused (PGS_EFORMAT).
 *
 * A path names elements from the top level of the fragment down, separated by "/":
 * "Error/Code" in a whole document, "Key" inside the fragment of one Contents element.
 */
#ifndef PGSHIP_COORDINATOR_S3_XML_H
#define PGSHIP_COORDINATOR_S3_XML_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define S3_XML_MAX_DEPTH 16
#define S3_XML_MAX_NAME 64
#define S3_XML_MAX_DOC (16u << 20) /* larger fragments are refused whole */

/* Finds the first element at path and copies its decoded text (NUL-terminated) into out, which
 * holds cap bytes. Returns 1 when found, 0 when the fragment is well formed but has no such
 * element, or a negative code (PGS_EFORMAT, PGS_ETRUNC, PGS_ELIMIT) with e filled. */
int s3_xml_get(const char *doc, size_t len, const char *path, char *out, size_t cap, pgs_error *e);

/* As s3_xml_get, for a decimal unsigned 64-bit value. 1, 0 or a negative code. */
int s3_xml_get_u64(const char *doc, size_t len, const char *path, uint64_t *out, pgs_error *e);

/* Receives the raw inner fragment of one matching element (markup and entities not decoded, so
 * it can be searched again with s3_xml_get). Returns 0 to go on, or a negative code to stop. */
typedef int (*s3_xml_each_fn)(void *arg, const char *frag, size_t len);

/* Calls cb for every element at path, in document order, once the whole fragment has been
 * checked. Returns the number of elements, or the first negative code (the callback's own, or
 * the extractor's with e filled). */
int s3_xml_each(const char *doc, size_t len, const char *path, s3_xml_each_fn cb, void *arg,
                pgs_error *e);

/* Escapes text for element content (& < > " '). Returns 0, PGS_ELIMIT when out (cap bytes, NUL
 * included) is too small, or PGS_EINVAL for a character XML cannot carry. */
int s3_xml_escape(const char *in, char *out, size_t cap);

#endif

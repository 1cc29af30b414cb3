/*
 * The pgship envelope: the encryption layer of an archive (docs/archive-format.md).
 *
 *   header:  magic, version, flags, chunk size, recipients (key id + the data key sealed to that
 *            key with crypto_box_seal), the secretstream header, and a keyed BLAKE2b MAC of all of
 *            it under a key derived from the data key
 *   chunks:  seq (u64) | length (u32) | crypto_secretstream_xchacha20poly1305 ciphertext, whose
 *            associated data is the header MAC and seq; the last chunk carries TAG_FINAL
 *
 * The writer pushes bytes to a sink callback; the reader pulls bytes from a source callback and
 * hands out one chunk of plaintext at a time. Memory is two chunk buffers on either side; the
 * reader accepts no chunk size above ENVELOPE_CHUNK_MAX whatever the header says.
 */
#ifndef PGSHIP_PROTO_ENVELOPE_H
#define PGSHIP_PROTO_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "common/keys.h"

#define ENVELOPE_MAGIC "\x89PGSHIP\n"
#define ENVELOPE_MAGIC_LEN 8
#define ENVELOPE_VERSION 1
#define ENVELOPE_CHUNK_MIN 4096u
#define ENVELOPE_CHUNK_MAX (16u << 20)
#define ENVELOPE_CHUNK_DEFAULT (1u << 20)
#define ENVELOPE_RECIPIENTS_MAX 32
#define ENVELOPE_FIXED_LEN 44    /* magic .. secretstream header */
#define ENVELOPE_SEALED_LEN 80   /* crypto_box_SEALBYTES + 32-byte data key */
#define ENVELOPE_RECIPIENT_LEN (KEY_ID_LEN + ENVELOPE_SEALED_LEN)
#define ENVELOPE_MAC_LEN 32
#define ENVELOPE_FRAME_HDR 12    /* seq u64 + length u32 */
#define ENVELOPE_ABYTES 17       /* crypto_secretstream_xchacha20poly1305_ABYTES */

/* Receives output bytes; returns 0, or a negative PGS_E* code to stop the writer. */
typedef int (*envelope_sink_fn)(void *arg, const void *buf, size_t len);
/* Fills buf with up to len bytes; returns the count, 0 at end of input, or -1 on error. */
typedef ssize_t (*envelope_source_fn)(void *arg, void *buf, size_t len);

typedef struct envelope_writer envelope_writer;
typedef struct envelope_reader envelope_reader;

/* Creates a writer and emits the header. Recipients must be 1..ENVELOPE_RECIPIENTS_MAX distinct
 * keys; chunk_size is within [ENVELOPE_CHUNK_MIN, ENVELOPE_CHUNK_MAX]. */
int envelope_writer_new(envelope_writer **out, const pgs_pubkey *rcpts, size_t nrcpts,
                        uint32_t chunk_size, envelope_sink_fn sink, void *arg, pgs_error *e);
int envelope_writer_write(envelope_writer *w, const void *buf, size_t len, pgs_error *e);
/* Emits the final chunk. No write may follow. */
int envelope_writer_finish(envelope_writer *w, pgs_error *e);
/* True once finish succeeded. */
int envelope_writer_finished(const envelope_writer *w);
void envelope_writer_free(envelope_writer *w);

int envelope_reader_new(envelope_reader **out, envelope_source_fn src, void *arg);
/* Reads and checks the header's structure (no key needed): magic, version, limits. */
int envelope_reader_read_header(envelope_reader *r, pgs_error *e);
/* Recipient key ids, valid after read_header. */
size_t envelope_reader_recipient_count(const envelope_reader *r);
const uint8_t *envelope_reader_recipient_id(const envelope_reader *r, size_t i);
uint32_t envelope_reader_chunk_size(const envelope_reader *r);
/* Opens the data key with one of keys and verifies the header MAC. */
int envelope_reader_unlock(envelope_reader *r, const pgs_seckey *keys, size_t nkeys, pgs_error *e);
/* Next chunk of plaintext: 1 with *data and *len set (valid until the next call), 0 at the verified
 * end (final tag seen, nothing after it), or a negative code. */
int envelope_reader_next(envelope_reader *r, const uint8_t **data, size_t *len, pgs_error *e);
/* Bytes of input consumed so far. */
uint64_t envelope_reader_offset(const envelope_reader *r);
/* Chunks authenticated so far (the final one included once the reader reached the end). */
uint64_t envelope_reader_chunks(const envelope_reader *r);
void envelope_reader_free(envelope_reader *r);

#endif

-- fixture.sql - a deliberately nasty, fully deterministic database for
-- pgship dump/restore round-trip tests.
--
-- Run against an EMPTY database:
--   psql -X -v ON_ERROR_STOP=1 -d DB -f fixture.sql
--
-- Everything stored is derived from generate_series numbers or literals
-- (no random(), no now()), so two builds produce identical content.
-- Large objects use fixed OIDs 4242001..4242004.

\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
SET standard_conforming_strings = on;

BEGIN;

---------------------------------------------------------------------------
-- schemas
---------------------------------------------------------------------------
CREATE SCHEMA shop;
CREATE SCHEMA "Mixed Case Schema";
CREATE SCHEMA "Ünïcødé";
CREATE SCHEMA archive;

COMMENT ON SCHEMA shop IS 'main application schema';
COMMENT ON SCHEMA "Mixed Case Schema" IS 'quoted name with a space';
COMMENT ON SCHEMA "Ünïcødé" IS 'schéma avec des caractères unicode — 日本語';

---------------------------------------------------------------------------
-- types: enums, domains, composite
---------------------------------------------------------------------------
CREATE TYPE shop.order_status AS ENUM ('new', 'paid', 'shipped', 'cancelled', 'it''s "odd"');
CREATE TYPE "Ünïcødé"."Farbe" AS ENUM ('rot', 'grün', 'blau', 'weiß');

CREATE DOMAIN shop.email AS text
    CHECK (VALUE ~ '^[^@\s]+@[^@\s]+$');
CREATE DOMAIN shop.positive_money AS numeric(14,2)
    NOT NULL DEFAULT 0 CHECK (VALUE >= 0);
CREATE DOMAIN "Mixed Case Schema"."Short Code" AS varchar(8)
    CHECK (length(VALUE) BETWEEN 1 AND 8);

CREATE TYPE shop.address AS (
    street  text,
    city    text,
    zip     varchar(10),
    geo     point
);

COMMENT ON TYPE shop.address IS 'postal address composite';
COMMENT ON DOMAIN shop.email IS 'very loose e-mail check';

---------------------------------------------------------------------------
-- sequences
---------------------------------------------------------------------------
CREATE SEQUENCE shop.invoice_no_seq START 1000 INCREMENT 7 CACHE 1;
CREATE SEQUENCE "Mixed Case Schema"."Odd Seq" AS integer MINVALUE -100 START -100 INCREMENT -3 MAXVALUE 0 CYCLE;
CREATE SEQUENCE archive.never_used_seq;

---------------------------------------------------------------------------
-- functions
---------------------------------------------------------------------------
CREATE FUNCTION shop.det_uuid(n bigint, salt text DEFAULT '') RETURNS uuid
    LANGUAGE sql IMMUTABLE STRICT
    AS $$ SELECT md5(salt || ':' || n::text)::uuid $$;

CREATE FUNCTION shop.touch_updated() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := coalesce(NEW.updated_at, TIMESTAMPTZ '2000-01-01 00:00:00+00')
                      + interval '1 second';
    RETURN NEW;
END;
$$;

CREATE FUNCTION shop.audit_row() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO shop.audit_log (table_name, op, row_data)
    VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, TG_OP,
            CASE WHEN TG_OP = 'DELETE' THEN to_jsonb(OLD) ELSE to_jsonb(NEW) END);
    RETURN NULL;
END;
$$;

CREATE FUNCTION "Ünïcødé"."Größe"(s text) RETURNS integer
    LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    "Ergebnis" integer := 0;
BEGIN
    "Ergebnis" := coalesce(length(s), -1);
    RETURN "Ergebnis";
END;
$$;

COMMENT ON FUNCTION shop.det_uuid(bigint, text) IS 'deterministic uuid from a number';

---------------------------------------------------------------------------
-- tables
---------------------------------------------------------------------------
CREATE TABLE shop.customers (
    id          bigint GENERATED ALWAYS AS IDENTITY (START WITH 1 INCREMENT BY 1) PRIMARY KEY,
    ext_id      uuid NOT NULL UNIQUE,
    name        text NOT NULL,
    email       shop.email,
    home        shop.address,
    tags        text[],
    scores      int[],
    prefs       jsonb NOT NULL DEFAULT '{}'::jsonb,
    balance     shop.positive_money,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz,
    note        text,
    CONSTRAINT customers_name_not_blank CHECK (name <> '')
);
COMMENT ON TABLE shop.customers IS 'Customers; note: "quotes", ''apostrophes'' and \backslashes\';
COMMENT ON COLUMN shop.customers.prefs IS 'free-form preferences';

CREATE TABLE shop.orders (
    id          bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES shop.customers (id) ON DELETE CASCADE,
    status      shop.order_status NOT NULL DEFAULT 'new',
    invoice_no  bigint,
    ordered_at  timestamptz NOT NULL,
    ship_within interval,
    total       numeric(20,4),
    items_count int GENERATED ALWAYS AS (0) STORED
);

CREATE TABLE shop.order_items (
    order_id    bigint NOT NULL REFERENCES shop.orders (id) ON DELETE CASCADE,
    line_no     smallint NOT NULL,
    sku         text NOT NULL,
    qty         integer NOT NULL CHECK (qty > 0),
    unit_price  numeric(12,3) NOT NULL,
    PRIMARY KEY (order_id, line_no)
);

-- SQL-function bodies are validated at creation: define after its table
CREATE FUNCTION shop.order_total(p_order bigint) RETURNS numeric
    LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(qty * unit_price), 0) FROM shop.order_items WHERE order_id = p_order
$$;

CREATE TABLE shop.audit_log (
    id          integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    table_name  text NOT NULL,
    op          text NOT NULL,
    row_data    jsonb
);

-- the big one: 150000 rows with varied text
CREATE TABLE shop.events (
    id          bigint PRIMARY KEY,
    kind        text NOT NULL,
    payload     text,
    amount      numeric,
    happened_at timestamptz,
    flag        boolean,
    ratio       double precision
);

CREATE TABLE "Mixed Case Schema"."Weird Table" (
    "ID"            integer PRIMARY KEY,
    "Column With Spaces" text,
    "select"        text,                -- reserved word
    "CamelCase"     "Mixed Case Schema"."Short Code",
    "quote""inside" text,
    "Ünïcødé Spalte" text,
    blob            bytea,
    r               real,
    d               double precision,
    n               numeric,
    ts              timestamp,
    tz              timestamptz,
    dt              date,
    tm              time,
    iv              interval,
    b               bit varying(16),
    inet_col        inet,
    cidr_col        cidr,
    mac             macaddr,
    range_col       int4range,
    tsr             tstzrange,
    money_col       money,
    xml_col         xml,
    json_col        json
);
COMMENT ON COLUMN "Mixed Case Schema"."Weird Table"."Column With Spaces" IS 'column, with spaces';

CREATE TABLE "Ünïcødé"."Straße" (
    "Nummer"    integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    "Name"      text NOT NULL,
    "Farbe"     "Ünïcødé"."Farbe",
    "Länge"     numeric(10,3),
    "備考"       text
);

-- range partitioned table, with a default partition
CREATE TABLE archive.measurements (
    sensor_id   integer NOT NULL,
    taken_at    timestamptz NOT NULL,
    value       double precision,
    raw         bytea
) PARTITION BY RANGE (taken_at);

CREATE TABLE archive.measurements_2021 PARTITION OF archive.measurements
    FOR VALUES FROM ('2021-01-01 00:00:00+00') TO ('2022-01-01 00:00:00+00');
CREATE TABLE archive.measurements_2022 PARTITION OF archive.measurements
    FOR VALUES FROM ('2022-01-01 00:00:00+00') TO ('2023-01-01 00:00:00+00');
CREATE TABLE archive.measurements_2023 PARTITION OF archive.measurements
    FOR VALUES FROM ('2023-01-01 00:00:00+00') TO ('2024-01-01 00:00:00+00');
CREATE TABLE archive."measurements Default" PARTITION OF archive.measurements DEFAULT;
CREATE INDEX measurements_sensor_idx ON archive.measurements (sensor_id, taken_at);

-- list partitioned on text, with sub-partitioning
CREATE TABLE archive.docs (
    region  text NOT NULL,
    doc_id  integer NOT NULL,
    body    text,
    PRIMARY KEY (region, doc_id)
) PARTITION BY LIST (region);
CREATE TABLE archive.docs_eu PARTITION OF archive.docs FOR VALUES IN ('eu', 'EU');
CREATE TABLE archive.docs_us PARTITION OF archive.docs FOR VALUES IN ('us');
CREATE TABLE archive.docs_other PARTITION OF archive.docs DEFAULT;

-- edge cases: zero rows, zero columns, unlogged, toasted content
CREATE TABLE archive.empty_table (id int PRIMARY KEY, t text);
CREATE TABLE archive.no_columns ();
CREATE UNLOGGED TABLE archive.unlogged_cache (k text PRIMARY KEY, v bytea);
CREATE TABLE archive.big_values (
    id      int PRIMARY KEY,
    big_txt text,
    big_bin bytea
);

---------------------------------------------------------------------------
-- indexes
---------------------------------------------------------------------------
CREATE INDEX customers_email_lower_idx ON shop.customers (lower(email));
CREATE INDEX customers_tags_gin ON shop.customers USING gin (tags);
CREATE INDEX customers_prefs_gin ON shop.customers USING gin (prefs jsonb_path_ops);
CREATE INDEX orders_open_idx ON shop.orders (ordered_at) WHERE status IN ('new', 'paid');
CREATE INDEX orders_customer_idx ON shop.orders (customer_id);
CREATE INDEX events_time_idx ON shop.events (happened_at DESC NULLS LAST);
CREATE INDEX events_flagged_idx ON shop.events (id) WHERE flag;
CREATE UNIQUE INDEX "Weird Table_select_uq" ON "Mixed Case Schema"."Weird Table" ("select") WHERE "select" IS NOT NULL;
CREATE INDEX "Straße_name_idx" ON "Ünïcødé"."Straße" (upper("Name"));

---------------------------------------------------------------------------
-- data
---------------------------------------------------------------------------
INSERT INTO shop.customers (ext_id, name, email, home, tags, scores, prefs, balance, created_at, updated_at, note)
SELECT shop.det_uuid(i, 'cust'),
       CASE i % 7
           WHEN 0 THEN 'O''Brien #' || i
           WHEN 1 THEN 'Müller-Lüdenscheidt ' || i
           WHEN 2 THEN E'Tab\there ' || i
           WHEN 3 THEN E'Line\nbreak ' || i
           WHEN 4 THEN 'Back\slash\\ ' || i
           WHEN 5 THEN '"double quoted" ' || i
           ELSE '日本語の名前 ' || i
       END,
       CASE WHEN i % 10 = 0 THEN NULL ELSE 'user' || i || '@example.org' END,
       CASE WHEN i % 9 = 0 THEN NULL
            ELSE ROW('Street ' || i || E', apt "' || (i % 13) || '"', 'City' || (i % 17),
                     lpad((i * 37 % 100000)::text, 5, '0'),
                     point(i / 10.0, -i / 7.0))::shop.address END,
       CASE WHEN i % 11 = 0 THEN NULL
            WHEN i % 11 = 1 THEN '{}'::text[]
            ELSE ARRAY['tag' || (i % 5), 'with space', 'with,comma', E'quo"te', NULL, ''] END,
       CASE WHEN i % 8 = 0 THEN NULL ELSE ARRAY[i, i * 2, -i, 0] END,
       jsonb_build_object('id', i, 'lang', (ARRAY['de','en','ja','fr'])[1 + i % 4],
                          'nested', jsonb_build_object('a', ARRAY[1, 2, i], 'b', NULL::text, 'c', i % 2 = 0),
                          'weird key "\', E'v\u00e9rit\u00e9\n'),
       (i * 12.34)::numeric(14,2),
       TIMESTAMPTZ '2020-01-01 00:00:00+00' + i * interval '1 hour 7 minutes 3.25 seconds',
       NULL,
       CASE i % 4 WHEN 0 THEN NULL WHEN 1 THEN '' ELSE repeat('note ', i % 20) END
FROM generate_series(1, 2000) AS i;

INSERT INTO shop.orders (customer_id, status, invoice_no, ordered_at, ship_within, total)
SELECT 1 + (i * 7919) % 2000,
       (ARRAY['new','paid','shipped','cancelled','it''s "odd"']::shop.order_status[])[1 + i % 5],
       CASE WHEN i % 3 = 0 THEN nextval('shop.invoice_no_seq') END,
       TIMESTAMPTZ '2021-06-01 12:00:00+00' + i * interval '37 minutes',
       CASE WHEN i % 6 = 0 THEN NULL ELSE make_interval(days => i % 10, hours => i % 24, secs => (i % 60) / 4.0) END,
       NULL
FROM generate_series(1, 5000) AS i;

INSERT INTO shop.order_items (order_id, line_no, sku, qty, unit_price)
SELECT o, l, 'SKU-' || lpad(((o * 31 + l) % 9973)::text, 5, '0'), 1 + (o + l) % 9, ((o * l) % 10000) / 7.0
FROM generate_series(1, 5000) AS o, generate_series(1, 4) AS l
WHERE (o + l) % 3 <> 0;

UPDATE shop.orders SET total = shop.order_total(id);

INSERT INTO shop.events (id, kind, payload, amount, happened_at, flag, ratio)
SELECT i,
       (ARRAY['click','view','purchase','error','Ärger','log'])[1 + i % 6],
       CASE
           WHEN i % 97 = 0 THEN NULL
           WHEN i % 89 = 0 THEN ''
           WHEN i % 5 = 0 THEN E'multi\nline\r\ntext\twith tab ' || i
           WHEN i % 5 = 1 THEN md5(i::text) || repeat('x', i % 9)
           WHEN i % 5 = 2 THEN 'quote '' and "dq" and \ backslash ' || i
           WHEN i % 5 = 3 THEN 'ünïcødé ☃ 🐘 ' || i
           ELSE to_char(i, 'FM000000') || ' ' || repeat(chr(65 + i % 26), i % 7)
       END,
       CASE WHEN i % 13 = 0 THEN NULL ELSE round((i::numeric * 1.001) ^ 2 / 3, 5) END,
       CASE WHEN i % 1000 = 0 THEN NULL
            ELSE TIMESTAMPTZ '2019-03-31 01:30:00+00' + i * interval '61 seconds' END,
       CASE WHEN i % 17 = 0 THEN NULL ELSE i % 3 = 0 END,
       CASE i % 50 WHEN 0 THEN 'NaN'::float8 WHEN 1 THEN 'Infinity' WHEN 2 THEN '-Infinity'
                   WHEN 3 THEN '-0' ELSE i / 7.0::float8 END
FROM generate_series(1, 150000) AS i;

INSERT INTO "Mixed Case Schema"."Weird Table"
SELECT i,
       CASE WHEN i % 5 = 0 THEN NULL ELSE 'spaces ' || i END,
       CASE WHEN i % 4 = 0 THEN NULL ELSE 'sel' || i END,
       'C' || i,
       E'it''s \\ "x" ' || i,
       'ßüö ' || i,
       CASE i % 5
           WHEN 0 THEN NULL
           WHEN 1 THEN ''::bytea
           WHEN 2 THEN '\x00'::bytea
           WHEN 3 THEN '\x00ff00fe0d0a5c27220009'::bytea
           ELSE decode(md5(i::text) || '0000' || md5((i + 1)::text), 'hex')
       END,
       (i / 3.0)::real,
       CASE i % 10 WHEN 0 THEN 'NaN' WHEN 1 THEN '-0' ELSE 1.0 / i END,
       CASE i % 10 WHEN 0 THEN 'NaN'::numeric WHEN 1 THEN 'Infinity' WHEN 2 THEN '-Infinity'
                   ELSE i * 1234567890.123456789::numeric END,
       CASE i % 10 WHEN 0 THEN 'infinity'::timestamp WHEN 1 THEN '-infinity' ELSE TIMESTAMP '1999-12-31 23:59:59.999999' + i * interval '1 day' END,
       TIMESTAMPTZ '0044-03-15 12:00:00+00 BC' + i * interval '100 years',
       DATE '2000-02-29' + i,
       TIME '23:59:59.5' - i * interval '1 minute',
       make_interval(years => i % 3, months => -(i % 5), days => i, secs => i / 1000.0),
       (i::bit(16))::bit varying(16),
       ('10.' || i || '.0.1')::inet,
       ('192.168.' || i || '.0/24')::cidr,
       ('08:00:2b:01:02:' || lpad(to_hex(i), 2, '0'))::macaddr,
       CASE WHEN i % 3 = 0 THEN 'empty'::int4range ELSE int4range(i, i * 10) END,
       tstzrange(TIMESTAMPTZ '2020-01-01 00:00:00+00' + i * interval '1 day', NULL, '[)'),
       (i * 1.25)::numeric::money,
       xmlparse(content '<a attr="' || i || '">t&amp;x ' || i || '</a>'),
       ('{"k": ' || i || ', "dup": 1, "dup": 2, "sp":  "  "}')::json
FROM generate_series(1, 200) AS i;

INSERT INTO "Ünïcødé"."Straße" ("Name", "Farbe", "Länge", "備考")
SELECT 'Straße ' || i,
       (ARRAY['rot','grün','blau','weiß']::"Ünïcødé"."Farbe"[])[1 + i % 4],
       i * 1.5,
       CASE WHEN i % 2 = 0 THEN '備考 ' || i END
FROM generate_series(1, 300) AS i;

INSERT INTO archive.measurements (sensor_id, taken_at, value, raw)
SELECT i % 50,
       TIMESTAMPTZ '2020-07-01 00:00:00+00' + i * interval '1 hour 13 minutes',
       sin(i) * 100,
       CASE WHEN i % 10 = 0 THEN decode(lpad(to_hex(i), 8, '0') || '00', 'hex') END
FROM generate_series(1, 30000) AS i;

INSERT INTO archive.docs (region, doc_id, body)
SELECT (ARRAY['eu','EU','us','apac','latam'])[1 + i % 5], i,
       'document ' || i || E'\n' || repeat('lorem ipsum ', i % 15)
FROM generate_series(1, 2500) AS i;

INSERT INTO archive.unlogged_cache
SELECT 'k' || i, decode(md5(i::text), 'hex') FROM generate_series(1, 100) AS i;

INSERT INTO archive.big_values
SELECT i,
       repeat('compressible ' || i || ' ', 5000),
       decode(string_agg(md5(i::text || ':' || j::text), '' ORDER BY j), 'hex')
FROM generate_series(1, 20) AS i, generate_series(1, 600) AS j
GROUP BY i;

INSERT INTO archive.no_columns DEFAULT VALUES;
INSERT INTO archive.no_columns DEFAULT VALUES;
INSERT INTO archive.no_columns DEFAULT VALUES;

---------------------------------------------------------------------------
-- triggers (created after the bulk load; they fire on later changes)
---------------------------------------------------------------------------
CREATE TRIGGER customers_touch BEFORE UPDATE ON shop.customers
    FOR EACH ROW EXECUTE FUNCTION shop.touch_updated();
CREATE TRIGGER "Orders Audit" AFTER INSERT OR UPDATE OR DELETE ON shop.orders
    FOR EACH ROW EXECUTE FUNCTION shop.audit_row();
COMMENT ON TRIGGER "Orders Audit" ON shop.orders IS 'writes to shop.audit_log';

-- fire them a little, deterministically
UPDATE shop.customers SET balance = balance + 1 WHERE id % 100 = 0;
UPDATE shop.orders SET status = 'shipped' WHERE id % 500 = 0;
DELETE FROM shop.orders WHERE id IN (4999, 5000);

---------------------------------------------------------------------------
-- standalone sequence states
---------------------------------------------------------------------------
SELECT setval('shop.invoice_no_seq', 987654, true);
SELECT setval('"Mixed Case Schema"."Odd Seq"', -42, false);

---------------------------------------------------------------------------
-- large objects (fixed OIDs so content and identity are deterministic)
---------------------------------------------------------------------------
SELECT lo_from_bytea(4242001, 'hello large object'::bytea);
SELECT lo_from_bytea(4242002, '\x0000000102ff00'::bytea);
SELECT lo_from_bytea(4242003, (SELECT decode(string_agg(md5(j::text), '' ORDER BY j), 'hex')
                               FROM generate_series(1, 20000) AS j));
SELECT lo_from_bytea(4242004, ''::bytea);
COMMENT ON LARGE OBJECT 4242001 IS 'a greeting';

CREATE TABLE shop.attachments (
    id      int PRIMARY KEY,
    name    text,
    content oid
);
INSERT INTO shop.attachments VALUES
    (1, 'hello.txt', 4242001), (2, 'zeros.bin', 4242002),
    (3, 'big.bin', 4242003), (4, 'empty', 4242004);

---------------------------------------------------------------------------
-- views, materialized view
---------------------------------------------------------------------------
CREATE VIEW shop.order_summary AS
SELECT o.id, c.name AS customer, o.status, o.total, count(i.*) AS lines
FROM shop.orders o
JOIN shop.customers c ON c.id = o.customer_id
LEFT JOIN shop.order_items i ON i.order_id = o.id
GROUP BY o.id, c.name, o.status, o.total;
COMMENT ON VIEW shop.order_summary IS 'one row per order';

CREATE VIEW "Ünïcødé"."Übersicht" AS
SELECT "Nummer", "Name", "Ünïcødé"."Größe"("Name") AS "Größe"
FROM "Ünïcødé"."Straße" WHERE "Farbe" <> 'weiß'
WITH LOCAL CHECK OPTION;

CREATE MATERIALIZED VIEW shop.daily_events AS
SELECT kind, date_trunc('day', happened_at AT TIME ZONE 'UTC') AS day, count(*) AS n, sum(amount) AS total
FROM shop.events
GROUP BY 1, 2;
CREATE UNIQUE INDEX daily_events_uq ON shop.daily_events (kind, day);

---------------------------------------------------------------------------
-- misc: grants to PUBLIC (no extra roles needed), default privileges
---------------------------------------------------------------------------
GRANT USAGE ON SCHEMA shop TO PUBLIC;
GRANT SELECT ON shop.order_summary TO PUBLIC;
REVOKE EXECUTE ON FUNCTION shop.order_total(bigint) FROM PUBLIC;

COMMIT;

ANALYZE;

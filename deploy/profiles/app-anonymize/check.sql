-- app-anonymize: check.sql - proves that sanitize.sql did its work. Every query returns the rows
-- that are NOT sanitized, so on a good copy every query returns nothing, and every row any of
-- them returns is a failure: the agent shows it in the report and the restore stops before the
-- swap (or, sanitizing at the source, before anything is dumped).
--
-- Each query names the table, the row's id and the problem, never the value itself: the report
-- travels to the coordinator and into its catalog, which is not a place for production data.
-- Plain SQL for the agent: one SELECT per statement, each ending with a semicolon at the end of
-- its line (there is none anywhere else), no psql meta-commands.
--
-- The checks know the fake formats sanitize.sql writes: change both files together.

-- 1. users.email must be user_<id>@example.invalid
SELECT 'app.users' AS "table", id, 'email is not user_<id>@example.invalid' AS problem
FROM app.users
WHERE email IS DISTINCT FROM 'user_' || id || '@example.invalid';

-- 2. every password hash is the one dummy hash (of "staging-password")
SELECT 'app.users' AS "table", id, 'password_hash is not the dummy hash' AS problem
FROM app.users
WHERE password_hash IS DISTINCT FROM '$2b$10$pgshipAnonymize.Dummy.hqwhZAmdurnZ9i6pa4TsbPnlTsdquIe';

-- 3. phones are NULL or in the range kept for fiction, +44 7700 900000 to 900999
SELECT 'app.users' AS "table", id, 'phone outside +44 7700 900xxx' AS problem
FROM app.users
WHERE phone IS NOT NULL AND phone !~ '^\+44 7700 900[0-9]{3}$';

-- 4. names come from the lists of made-up names
SELECT 'app.users' AS "table", id, 'first_name or last_name is not a made-up name' AS problem
FROM app.users
WHERE first_name <> ALL (ARRAY['Alex', 'Avery', 'Blake', 'Cameron', 'Casey', 'Charlie', 'Dakota', 'Drew',
                               'Emerson', 'Finley', 'Harper', 'Hayden', 'Jamie', 'Jordan', 'Kendall', 'Logan',
                               'Morgan', 'Parker', 'Quinn', 'Reese', 'Riley', 'Rowan', 'Sawyer', 'Skyler'])
   OR last_name <> ALL (ARRAY['Ashdown', 'Birchfield', 'Brookman', 'Calloway', 'Dunmore', 'Elmsworth',
                              'Fairbanks', 'Greystone', 'Hollins', 'Ivers', 'Kingsley', 'Lockwood', 'Marlowe',
                              'Northcott', 'Oakley', 'Pembrook', 'Quarry', 'Redfern', 'Stanwick', 'Thornbury',
                              'Underhill', 'Vance', 'Whitlock', 'Yardley']);

-- 5. addresses: a made-up street and town, a five-digit postcode
SELECT 'app.addresses' AS "table", id, 'street, city or postcode is not a made-up one' AS problem
FROM app.addresses
WHERE street !~ '^[0-9]{1,3} (Sample Street|Example Road|Test Lane|Placeholder Avenue|Fixture Way|Mock Close|Staging Gardens|Dummy Crescent)$'
   OR city <> ALL (ARRAY['Testville', 'Sampleton', 'Exampleburg', 'Mockford', 'Fixture Falls', 'Stagingham',
                         'Dummyport', 'Placeholder Bay'])
   OR postcode !~ '^[0-9]{5}$';

-- 6. IBANs are German ones of bank code 00000000, with valid check digits
SELECT 'app.payments' AS "table", id, 'iban is not a DE..00000000.. IBAN with valid check digits' AS problem
FROM app.payments
WHERE iban IS NOT NULL
  AND CASE WHEN iban ~ '^DE[0-9]{2}00000000[0-9]{10}$'
           THEN (substr(iban, 5) || '1314' || substr(iban, 3, 2))::numeric % 97 <> 1
           ELSE true END;

-- 7. card fingerprints are anon_<16 hex digits> and the last four digits derive from them
SELECT 'app.payments' AS "table", id, 'card_fingerprint or card_last4 is not a fake one' AS problem
FROM app.payments
WHERE card_fingerprint IS NOT NULL
  AND CASE WHEN card_fingerprint ~ '^anon_[0-9a-f]{16}$'
           THEN card_last4 IS DISTINCT FROM
                lpad(((('x' || substr(card_fingerprint, 6, 8))::bit(32)::int & 2147483647) % 10000)::text, 4, '0')
           ELSE true END;

-- 8. a card holder is the (fake) name of the user who placed the order
SELECT 'app.payments' AS "table", p.id, 'card_holder is not the user''s fake name' AS problem
FROM app.payments AS p
JOIN app.orders AS o ON o.id = p.order_id
JOIN app.users AS u ON u.id = o.user_id
WHERE p.card_holder IS NOT NULL
  AND p.card_holder IS DISTINCT FROM upper(u.first_name || ' ' || u.last_name);

-- 9. a net for columns nobody told the profile about: no text column of any table in schema app
-- holds an e-mail address outside example.invalid. One row per column, with the count.
SELECT format('%I.%I.%I', n.nspname, c.relname, a.attname) AS "table", NULL::bigint AS id,
       x.n || ' value(s) holding an e-mail address outside example.invalid' AS problem
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
CROSS JOIN LATERAL (
    SELECT (xpath('//n/text()', query_to_xml(format(
        'SELECT count(*) AS n FROM %I.%I WHERE %I::text LIKE %L AND regexp_replace(%I::text, %L, %L, %L) ~ %L',
        n.nspname, c.relname, a.attname, '%@%', a.attname,
        '[^@[:space:]]+@example\.invalid', '', 'g', '[^@[:space:]"<>(),]+@[^@[:space:]"<>(),]+\.[A-Za-z]{2,}'),
        false, false, '')))[1]::text::bigint AS n
) AS x
WHERE n.nspname = 'app' AND c.relkind IN ('r', 'p')
  AND a.atttypid IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype, 'json'::regtype, 'jsonb'::regtype)
  AND x.n > 0;

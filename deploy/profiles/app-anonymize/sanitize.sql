-- app-anonymize: sanitize.sql - turns a copy of the web shop database (schema app, see
-- tests/integration/sql/app.sql) into one that holds no personal data, so that it can go to
-- staging. docs/profiles.md explains every rule.
--
-- How it is run: the agent executes this file on the freshly restored temporary database, in ONE
-- transaction that it opens and commits itself, stopping at the first error (then the transaction
-- is rolled back, the temporary database dropped, and the target left untouched). So: no BEGIN,
-- COMMIT or VACUUM here, no psql meta-commands, plain SQL only, and every statement ends with a
-- semicolon at the end of its line (there is none anywhere else, not even in comments).
--
-- Deterministic: every fake value is computed from what it replaces (or from the row's id) with
-- md5 and a salt, never random() or now(). The same input gives the same output on every run,
-- so two syncs of one backup are identical, and equal values stay equal: a card used for ten
-- orders keeps one (fake) fingerprint, an account debited twice one (fake) IBAN. Keys are never
-- touched, so every join and foreign key holds, and e-mail addresses are unique by construction.
--
-- The salt: replace 'app-anonymize-example-salt' below with a secret of your own. Anyone who
-- knows it can hash a real IBAN or card fingerprint and see whether production holds it.

-- Helpers, in pg_temp: they live as long as this session and never reach a dump.
-- anon_hex(tag, v): 32 hex digits determined by the salt, a tag naming the rule, and v.
CREATE FUNCTION pg_temp.anon_hex(tag text, v text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT
    AS 'SELECT md5(''app-anonymize-example-salt:'' || tag || '':'' || v)';
-- anon_int(tag, v, n): an integer in [0, n) from the same hash.
CREATE FUNCTION pg_temp.anon_int(tag text, v text, n int) RETURNS int
    LANGUAGE sql IMMUTABLE STRICT
    AS 'SELECT ((''x'' || substr(pg_temp.anon_hex(tag, v), 1, 8))::bit(32)::int & 2147483647) % n';
-- anon_digits(tag, v, n): n decimal digits (n <= 15) from the same hash.
CREATE FUNCTION pg_temp.anon_digits(tag text, v text, n int) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT
    AS 'SELECT lpad(((''x'' || substr(pg_temp.anon_hex(tag, v), 1, 15))::bit(60)::bigint % (10::bigint ^ n)::bigint)::text, n, ''0'')';
-- anon_iban(v): a German IBAN with bank code 00000000 (no bank has it, so it names no real
-- account) and valid check digits (so the application's IBAN validation still accepts it).
CREATE FUNCTION pg_temp.anon_iban(v text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT
    AS 'SELECT ''DE'' || lpad((98 - ((''00000000'' || a || ''131400'')::numeric % 97))::text, 2, ''0'') || ''00000000'' || a
        FROM (SELECT pg_temp.anon_digits(''iban'', v, 10) AS a) AS s';

-- users.updated_at is stamped with now() by a trigger on every UPDATE: switched off while we
-- rewrite the rows (so the result does not depend on the clock, and updated_at keeps its real
-- meaning), and on again at the end. Both are part of the transaction.
ALTER TABLE app.users DISABLE TRIGGER users_set_updated_at;

-- users
--   email          user_<id>@example.invalid: unique because id is, and .invalid never delivers
--   first/last     from lists of made-up names, picked by a hash of the id
--   phone          in +44 7700 900000-900999, the range Ofcom keeps for fiction (NULL stays NULL)
--   date_of_birth  moved by 1 to 180 days, earlier or later: ages stay about right
--   password_hash  one bcrypt hash, of the password "staging-password", for every user
UPDATE app.users SET
    email = 'user_' || id || '@example.invalid',
    first_name = (ARRAY['Alex', 'Avery', 'Blake', 'Cameron', 'Casey', 'Charlie', 'Dakota', 'Drew',
                        'Emerson', 'Finley', 'Harper', 'Hayden', 'Jamie', 'Jordan', 'Kendall', 'Logan',
                        'Morgan', 'Parker', 'Quinn', 'Reese', 'Riley', 'Rowan', 'Sawyer', 'Skyler'])
                 [1 + pg_temp.anon_int('first_name', id::text, 24)],
    last_name = (ARRAY['Ashdown', 'Birchfield', 'Brookman', 'Calloway', 'Dunmore', 'Elmsworth',
                       'Fairbanks', 'Greystone', 'Hollins', 'Ivers', 'Kingsley', 'Lockwood', 'Marlowe',
                       'Northcott', 'Oakley', 'Pembrook', 'Quarry', 'Redfern', 'Stanwick', 'Thornbury',
                       'Underhill', 'Vance', 'Whitlock', 'Yardley'])
                [1 + pg_temp.anon_int('last_name', id::text, 24)],
    phone = CASE WHEN phone IS NOT NULL
                 THEN '+44 7700 900' || lpad(pg_temp.anon_int('phone', id::text, 1000)::text, 3, '0') END,
    date_of_birth = date_of_birth
        + (CASE WHEN pg_temp.anon_int('dob_sign', id::text, 2) = 0 THEN -1 ELSE 1 END)
          * (1 + pg_temp.anon_int('dob_days', id::text, 180)),
    password_hash = '$2b$10$pgshipAnonymize.Dummy.hqwhZAmdurnZ9i6pa4TsbPnlTsdquIe';

-- addresses: a made-up street and town, five digits for the postcode. The country stays (tax,
-- currency and shipping rules depend on it), and so do the kind and the dates.
UPDATE app.addresses SET
    street = (1 + pg_temp.anon_int('street_no', id::text, 199)) || ' ' ||
             (ARRAY['Sample Street', 'Example Road', 'Test Lane', 'Placeholder Avenue', 'Fixture Way',
                    'Mock Close', 'Staging Gardens', 'Dummy Crescent'])
             [1 + pg_temp.anon_int('street', id::text, 8)],
    city = (ARRAY['Testville', 'Sampleton', 'Exampleburg', 'Mockford', 'Fixture Falls', 'Stagingham',
                  'Dummyport', 'Placeholder Bay'])
           [1 + pg_temp.anon_int('city', id::text, 8)],
    postcode = pg_temp.anon_digits('postcode', id::text, 5);

-- payments, in one pass (NULLs stay NULL: the helpers are STRICT)
--   card_fingerprint  anon_<16 hex digits> from the real one: equal cards stay equal
--   card_last4        from the same hash (check.sql recomputes it from the fake fingerprint)
--   iban              anon_iban of the real one: equal accounts stay equal
--   card_holder       the (new, fake) name of the user who placed the order, as cards print it
-- Amounts, statuses and dates stay: they are what staging is for.
UPDATE app.payments AS p SET
    card_fingerprint = 'anon_' || left(pg_temp.anon_hex('card', p.card_fingerprint), 16),
    card_last4 = lpad(((('x' || left(pg_temp.anon_hex('card', p.card_fingerprint), 8))::bit(32)::int
                        & 2147483647) % 10000)::text, 4, '0'),
    iban = pg_temp.anon_iban(p.iban),
    card_holder = CASE WHEN p.card_holder IS NOT NULL THEN upper(u.first_name || ' ' || u.last_name) END
FROM app.orders AS o
JOIN app.users AS u ON u.id = o.user_id
WHERE o.id = p.order_id;

ALTER TABLE app.users ENABLE TRIGGER users_set_updated_at;

DROP FUNCTION pg_temp.anon_iban(text), pg_temp.anon_digits(text, text, int),
    pg_temp.anon_int(text, text, int), pg_temp.anon_hex(text, text);

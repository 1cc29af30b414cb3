-- Text-heavy synthetic data set for tests/bench/dump_bench.sh.
--
-- Builds four tables (customers, comments, events, order_lines) of pseudo-random but
-- realistic-looking rows: words drawn (skewed) from a vocabulary, sentences
-- from a phrase pool, names, e-mails, addresses, md5-derived session ids,
-- numbers, timestamps and small JSON payloads.  The aim is data that
-- compresses roughly like real application data (about 2x with zstd -3), i.e.
-- neither all-unique hex nor highly repetitive filler.  Everything is
-- deterministic (hashint8extended-based), so a given size gives the same data.
--
-- Run with psql; the caller picks the step(s) with boolean variables so that
-- the big tables can be filled from parallel sessions:
--   psql -v step=setup    -v cu_rows=N -v cm_rows=N -v ev_rows=N -f textheavy.sql
--   psql -v step=customers ...   (in parallel)
--   psql -v step=comments  ...   (in parallel)
--   psql -v step=events    ...   (in parallel)
--   psql -v step=order_lines ... (in parallel)
--   psql -v step=finish   -f textheavy.sql
-- or -v step=all to do everything in one session.

\set ON_ERROR_STOP 1
\if :{?step}
\else
\set step all
\endif
\if :{?cu_rows}
\else
\set cu_rows 100000
\endif
\if :{?cm_rows}
\else
\set cm_rows 400000
\endif
\if :{?ev_rows}
\else
\set ev_rows 1000000
\endif
\if :{?ol_rows}
\else
\set ol_rows 1000000
\endif

SELECT :'step' IN ('all', 'setup')     AS do_setup,
       :'step' IN ('all', 'customers') AS do_customers,
       :'step' IN ('all', 'comments')  AS do_comments,
       :'step' IN ('all', 'events')    AS do_events,
       :'step' IN ('all', 'order_lines') AS do_order_lines,
       :'step' IN ('all', 'finish')    AS do_finish \gset

SET client_min_messages = warning;

-------------------------------------------------------------------------------
\if :do_setup
DROP SCHEMA IF EXISTS gen CASCADE;
DROP TABLE IF EXISTS public.events, public.comments, public.customers, public.order_lines;
CREATE SCHEMA gen;

-- uniform pseudo-random int in [0, n) / float in [0, 1) for (key, stream)
CREATE FUNCTION gen.r(k bigint, s int, n int) RETURNS int
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT ((hashint8extended(k, s) & 2147483647) % n)::int $$;
CREATE FUNCTION gen.u(k bigint, s int) RETURNS float8
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT (hashint8extended(k, s) & 2147483647)::float8 / 2147483648.0 $$;

CREATE TABLE gen.vocab (id int PRIMARY KEY, w text NOT NULL);
INSERT INTO gen.vocab
SELECT (ord - 1)::int, w
FROM unnest(string_to_array(
'the of and to a in is it you that he was for on are with as his they be at one have this from or had by hot word but what some we can out other were all there when up use your how said an each she which do their time if will way about many then them write would like so these her long make thing see him two has look more day could go come did number sound no most people my over know water than call first who may down side been now find any new work part take get place made live where after back little only round man year came show every good me give our under name very through just form sentence great think say help low line differ turn cause much mean before move right boy old too same tell does set three want air well also play small end put home read hand port large spell add even land here must big high such follow act why ask men change went light kind off need house picture try us again animal point mother world near build self earth father head stand own page should country found answer school grow study still learn plant cover food sun four between state keep eye never last let thought city tree cross farm hard start might story saw far sea draw left late run while press close night real life few north open seem together next white children begin got walk example ease paper group always music those both mark often letter until mile river car feet care second book carry took science eat room friend began idea fish mountain stop once base hear horse cut sure watch color face wood main enough plain girl usual young ready above ever red list though feel talk bird soon body dog family direct pose leave song measure door product black short numeral class wind question happen complete ship area half rock order fire south problem piece told knew pass since top whole king space heard best hour better true during hundred five remember step early hold west ground interest reach fast verb sing listen six table travel less morning ten simple several vowel toward war lay against pattern slow center love person money serve appear road map rain rule govern pull cold notice voice unit power town fine certain fly fall lead cry dark machine note wait plan figure star box noun field rest correct able pound done beauty drive stood contain front teach week final gave green oh quick develop ocean warm free minute strong special mind behind clear tail produce fact street inch multiply nothing course stay wheel full force blue object decide surface deep moon island foot system busy test record boat common gold possible plane stead dry wonder laugh thousand ago ran check game shape equate miss brought heat snow tire bring yes distant fill east paint language among order shipping invoice refund account login password error timeout server database backup restore upload download customer payment delivery warehouse discount subscription cancel upgrade support ticket issue feature release version update install configure network latency cluster replica storage archive report dashboard metric alert invoice quantity price total'
, ' ')) WITH ORDINALITY AS t(w, ord);

-- ~130k sentences of 3..14 words, words picked with a skew towards the
-- start of the vocabulary (frequent words), first letter capitalised.
CREATE TABLE gen.phrase (id int PRIMARY KEY, t text NOT NULL);
INSERT INTO gen.phrase
SELECT p, initcap(left(s, 1)) || substr(s, 2) ||
          (ARRAY['.', '.', '.', '!', '?', '...', '.', ':)'])[1 + gen.r(p, 9, 8)]
FROM (
  SELECT p.p,
         (SELECT string_agg(v.w, ' ' ORDER BY i)
            FROM generate_series(1, 3 + gen.r(p.p, 1, 12)) AS i
            JOIN gen.vocab v
              ON v.id = floor((SELECT count(*) FROM gen.vocab)
                              * power(gen.u(p.p * 64 + i, 2), 1.7))::int) AS s
  FROM generate_series(0, 131071) AS p(p)
) x;
ANALYZE gen.vocab;
ANALYZE gen.phrase;

CREATE TABLE public.customers (
  id          int PRIMARY KEY,
  external_id uuid NOT NULL,
  first_name  text NOT NULL,
  last_name   text NOT NULL,
  email       text NOT NULL,
  phone       text,
  street      text,
  city        text,
  country     char(2),
  created_at  timestamptz NOT NULL,
  status      text NOT NULL,
  password_hash text,
  notes       text
);
CREATE TABLE public.comments (
  id          bigint PRIMARY KEY,
  post_id     int NOT NULL,
  customer_id int NOT NULL,
  created_at  timestamptz NOT NULL,
  updated_at  timestamptz,
  score       int NOT NULL,
  client_token uuid,
  status      text NOT NULL,
  body        text NOT NULL
);
CREATE TABLE public.events (
  id          bigint PRIMARY KEY,
  occurred_at timestamptz NOT NULL,
  customer_id int,
  kind        text NOT NULL,
  path        text NOT NULL,
  session_id  text NOT NULL,
  request_id  uuid NOT NULL,
  client_ip   inet,
  user_agent  text,
  duration_ms int,
  payload     jsonb
);
CREATE TABLE public.order_lines (
  id          bigint PRIMARY KEY,
  order_id    bigint NOT NULL,
  sku         text NOT NULL,
  qty         int NOT NULL,
  unit_price  numeric(10,2) NOT NULL,
  discount    numeric(4,2),
  added_at    timestamptz NOT NULL
);
-- primary keys are added back in the finish step (faster bulk load)
ALTER TABLE public.customers DROP CONSTRAINT customers_pkey;
ALTER TABLE public.comments  DROP CONSTRAINT comments_pkey;
ALTER TABLE public.events    DROP CONSTRAINT events_pkey;
ALTER TABLE public.order_lines DROP CONSTRAINT order_lines_pkey;
\endif

-------------------------------------------------------------------------------
\if :do_customers
INSERT INTO public.customers
SELECT g,
       md5(g::text || 'customer')::uuid,
       fn, ln,
       lower(fn) || CASE gen.r(g, 3, 3) WHEN 0 THEN '.' WHEN 1 THEN '_' ELSE '' END
         || lower(ln) || CASE WHEN gen.r(g, 4, 3) = 0 THEN (g % 100)::text ELSE '' END
         || '@' || (ARRAY['gmail.com','yahoo.com','outlook.com','example.org','mail.de',
                          'proton.me','icloud.com','company.io'])[1 + gen.r(g, 5, 8)],
       '+' || (ARRAY['1','44','49','33','39','34','31','46'])[1 + gen.r(g, 6, 8)]
         || ' ' || lpad(gen.r(g, 7, 1000)::text, 3, '0') || ' ' || lpad(gen.r(g, 8, 10000000)::text, 7, '0'),
       (1 + gen.r(g, 10, 2500))::text || ' ' || initcap(ph.t),
       (ARRAY['Springfield','Riverside','Franklin','Greenville','Bristol','Clinton','Fairview',
              'Salem','Madison','Georgetown','Arlington','Ashland','Dover','Oxford','Jackson',
              'Burlington','Manchester','Milton','Newport','Auburn','Dayton','Lexington'])[1 + gen.r(g, 11, 22)],
       (ARRAY['US','US','US','GB','DE','FR','IT','ES','NL','SE','CA','AU'])[1 + gen.r(g, 12, 12)],
       timestamptz '2015-01-01 00:00:00+00' + (g * interval '97 seconds') + gen.r(g, 13, 86400) * interval '1 second',
       (ARRAY['active','active','active','active','inactive','suspended','pending'])[1 + gen.r(g, 14, 7)],
       '$2b$12$' || translate(encode(decode(md5(g::text || 'pw') || md5(g::text || 'salt'), 'hex'), 'base64'), '+=', '.'),
       CASE WHEN gen.r(g, 15, 3) = 0 THEN NULL ELSE ph2.t END
FROM (SELECT g,
             (ARRAY['James','Mary','John','Patricia','Robert','Jennifer','Michael','Linda','William',
                    'Elizabeth','David','Barbara','Richard','Susan','Joseph','Jessica','Thomas','Sarah',
                    'Charles','Karen','Chris','Lisa','Daniel','Nancy','Matthew','Betty','Anthony',
                    'Sandra','Mark','Margaret','Anna','Lukas','Sofia','Emma','Noah','Liam','Olivia',
                    'Mia','Lucas','Hugo'])[1 + gen.r(g, 1, 40)] AS fn,
             (ARRAY['Smith','Johnson','Williams','Brown','Jones','Garcia','Miller','Davis','Rodriguez',
                    'Martinez','Hernandez','Lopez','Gonzalez','Wilson','Anderson','Thomas','Taylor',
                    'Moore','Jackson','Martin','Lee','Perez','Thompson','White','Harris','Sanchez',
                    'Clark','Ramirez','Lewis','Robinson','Walker','Young','Allen','King','Wright',
                    'Scott','Torres','Nguyen','Hill','Flores','Mueller','Schmidt','Schneider',
                    'Fischer','Weber','Meyer','Wagner','Becker','Dubois','Rossi'])[1 + gen.r(g, 2, 50)] AS ln,
             gen.r(g, 16, 131072) AS k1, gen.r(g, 17, 131072) AS k2
      FROM generate_series(1, :cu_rows) AS g) s
JOIN gen.phrase ph  ON ph.id  = s.k1
JOIN gen.phrase ph2 ON ph2.id = s.k2;
\endif

-------------------------------------------------------------------------------
\if :do_comments
INSERT INTO public.comments
SELECT g,
       1 + gen.r(g, 21, 50000),
       1 + gen.r(g, 22, :cu_rows),
       timestamptz '2016-01-01 00:00:00+00' + (g * interval '31 seconds') + gen.r(g, 23, 3600) * interval '1 second',
       CASE WHEN gen.r(g, 19, 4) = 0
            THEN timestamptz '2016-01-01 00:00:00+00' + (g * interval '31 seconds') + gen.r(g, 18, 9000000) * interval '1 second' END,
       gen.r(g, 24, 200) - 20,
       md5(g::text || 'tok')::uuid,
       (ARRAY['published','published','published','published','hidden','flagged','draft'])[1 + gen.r(g, 25, 7)],
       CASE n WHEN 1 THEN p1.t
              WHEN 2 THEN p1.t || ' ' || p2.t
              WHEN 3 THEN p1.t || ' ' || p2.t || ' ' || p3.t
              ELSE p1.t || ' ' || p2.t || E'\n\n' || p3.t || ' ' || p4.t END
       || CASE gen.r(g, 20, 6)
            WHEN 0 THEN ' See https://example.com/t/' || substr(md5(g::text || 'u'), 1, 12)
            WHEN 1 THEN ' (order #' || (10000000 + gen.r(g, 31, 89999999)) || ')'
            ELSE '' END
FROM (SELECT g, 1 + gen.r(g, 26, 4) AS n,
             gen.r(g, 27, 131072) AS k1, gen.r(g, 28, 131072) AS k2,
             gen.r(g, 29, 131072) AS k3, gen.r(g, 30, 131072) AS k4
      FROM generate_series(1, :cm_rows) AS g) s
JOIN gen.phrase p1 ON p1.id = s.k1
JOIN gen.phrase p2 ON p2.id = s.k2
JOIN gen.phrase p3 ON p3.id = s.k3
JOIN gen.phrase p4 ON p4.id = s.k4;
\endif

-------------------------------------------------------------------------------
\if :do_events
INSERT INTO public.events
SELECT g,
       ts,
       CASE WHEN gen.r(g, 31, 10) = 0 THEN NULL ELSE 1 + gen.r(g, 32, :cu_rows) END,
       kind,
       '/' || (ARRAY['products','cart','checkout','account','search','blog','help','api/v2/orders',
                     'api/v2/items','static/img'])[1 + gen.r(g, 33, 10)]
           || '/' || gen.r(g, 34, 100000)::text
           || CASE WHEN gen.r(g, 35, 4) = 0 THEN '?ref=' || v.w ELSE '' END,
       md5(gen.r(g, 52, greatest(:ev_rows / 8, 1))::text),
       md5(g::text || 'req')::uuid,
       (gen.r(g, 36, 223) + 1 || '.' || gen.r(g, 37, 256) || '.' || gen.r(g, 38, 256) || '.' || gen.r(g, 53, 256))::inet,
       CASE WHEN gen.r(g, 54, 10) < 4 THEN
       (ARRAY['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0 Safari/537.36',
              'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15',
              'Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0',
              'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148',
              'curl/8.4.0', 'python-requests/2.31.0', 'okhttp/4.12.0',
              'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0 Mobile Safari/537.36'])[1 + gen.r(g, 39, 8)]
       END,
       CASE WHEN gen.r(g, 40, 8) = 0 THEN NULL ELSE (power(gen.u(g, 41), 3) * 5000)::int END,
       ('{"amount": ' || round((gen.u(g, 44) * 500)::numeric, 2) ||
        ', "items": ' || gen.r(g, 43, 12) ||
        ', "cur": "' || (ARRAY['USD','EUR','GBP','USD','SEK'])[1 + gen.r(g, 45, 5)] ||
        '", "trace": "' || md5(g::text) ||
        '", "geo": [' || round((gen.u(g, 55) * 180 - 90)::numeric, 5) || ', ' || round((gen.u(g, 56) * 360 - 180)::numeric, 5) ||
        '], "tags": ["' || v.w || '", "' || v2.w || '"]' ||
        CASE WHEN gen.r(g, 46, 3) = 0 THEN ', "note": "' || ph.t || '"' ELSE '' END ||
        '}')::jsonb
FROM (SELECT g,
             timestamptz '2022-01-01 00:00:00+00' + (g * interval '3 seconds') + gen.r(g, 47, 60000) * interval '1 millisecond' AS ts,
             (ARRAY['page_view','page_view','page_view','page_view','click','click','search',
                    'add_to_cart','checkout','login','logout','api_call','error'])[1 + gen.r(g, 48, 13)] AS kind,
             floor(400 * power(gen.u(g, 49), 2))::int AS kv1,
             floor(400 * power(gen.u(g, 50), 2))::int AS kv2,
             gen.r(g, 51, 131072) AS kp
      FROM generate_series(1, :ev_rows) AS g) s
JOIN gen.vocab v  ON v.id  = s.kv1
JOIN gen.vocab v2 ON v2.id = s.kv2
JOIN gen.phrase ph ON ph.id = s.kp;
\endif

-------------------------------------------------------------------------------
\if :do_order_lines
INSERT INTO public.order_lines
SELECT g,
       1000000 + g / 3 + gen.r(g, 61, 2),
       (ARRAY['SKU','SKU','SKU','BK','EL','HM'])[1 + gen.r(g, 62, 6)] || '-' || lpad(gen.r(g, 63, 250000)::text, 6, '0'),
       1 + floor(8 * power(gen.u(g, 64), 3))::int,
       round((1 + gen.u(g, 65) * 999)::numeric, 2),
       CASE WHEN gen.r(g, 66, 5) = 0 THEN (ARRAY[5, 10, 15, 20, 25, 50])[1 + gen.r(g, 67, 6)] END,
       timestamptz '2020-01-01 00:00:00+00' + (g * interval '11 seconds') + gen.r(g, 68, 86400000) * interval '1 millisecond'
FROM generate_series(1, :ol_rows) AS g;
\endif

-------------------------------------------------------------------------------
\if :do_finish
ALTER TABLE public.customers ADD PRIMARY KEY (id);
ALTER TABLE public.comments  ADD PRIMARY KEY (id);
ALTER TABLE public.events    ADD PRIMARY KEY (id);
ALTER TABLE public.order_lines ADD PRIMARY KEY (id);
DROP SCHEMA gen CASCADE;
VACUUM (FREEZE, ANALYZE) public.customers, public.comments, public.events, public.order_lines;
CHECKPOINT;
\endif

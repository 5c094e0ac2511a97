-- sluice demo database: a small bookshop.
--
-- Loaded by `sluice demo` into a private, throwaway PostgreSQL cluster so that
-- an AI model has something realistic to explore. It runs once, in one
-- transaction, on an empty database (PostgreSQL 13 or later; no extensions).
--
--   authors      writers of the books in the catalogue
--   books        the catalogue: one row per edition the shop sells
--   customers    people with an account at the shop
--   orders       one row per checkout, with its life-cycle status
--   order_items  the lines of an order: which book, how many, at what price
--   reviews      star ratings and short reviews by customers who bought a book
--   book_sales_summary (view)  copies sold, revenue and ratings per book
--
-- The data is fixed (no random() or now()), so tests can assert exact values.
-- It shows off many PostgreSQL types: identity columns (integer and bigint),
-- numeric(10,2) money amounts, text, varchar(n), char(n), smallint, boolean,
-- date, timestamp, timestamptz, interval, uuid, an enum (order_status), a
-- domain (isbn13), arrays (text[] and integer[]), jsonb, bytea, and a
-- generated tsvector column with a GIN index.

BEGIN;

SET LOCAL search_path TO public;

-- Types ----------------------------------------------------------------------

CREATE TYPE order_status AS ENUM ('pending', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded');
COMMENT ON TYPE order_status IS
    'Life cycle of an order: pending -> paid -> shipped -> delivered; or cancelled before shipping, or refunded after.';

CREATE DOMAIN isbn13 AS text
    CONSTRAINT isbn13_format CHECK (VALUE ~ '^97[89][0-9]{10}$');
COMMENT ON DOMAIN isbn13 IS 'A 13-digit ISBN without hyphens, starting with 978 or 979.';

-- Tables ---------------------------------------------------------------------

CREATE TABLE authors (
    author_id    integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    full_name    varchar(120) NOT NULL UNIQUE,
    birth_year   smallint NOT NULL,
    death_year   smallint,
    country_code char(2) NOT NULL,
    bio          text,
    CONSTRAINT authors_lifespan_check CHECK (death_year IS NULL OR death_year >= birth_year)
);
COMMENT ON TABLE authors IS 'Writers whose books the shop sells (or has sold).';
COMMENT ON COLUMN authors.country_code IS 'ISO 3166-1 alpha-2 code of the country most associated with the author.';
COMMENT ON COLUMN authors.death_year IS 'NULL while the author is alive.';

CREATE TABLE books (
    book_id         integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    isbn            isbn13 NOT NULL UNIQUE,
    title           text NOT NULL,
    author_id       integer NOT NULL REFERENCES authors (author_id),
    first_published date,
    pages           integer CHECK (pages > 0),
    price           numeric(10,2) NOT NULL CHECK (price >= 0),
    stock_count     integer NOT NULL DEFAULT 0 CHECK (stock_count >= 0),
    in_print        boolean NOT NULL DEFAULT true,
    tags            text[] NOT NULL DEFAULT '{}',
    reading_time    interval,
    dimensions_mm   integer[] CHECK (cardinality(dimensions_mm) = 3),
    restocked_at    timestamp,
    cover_thumbnail bytea,
    metadata        jsonb NOT NULL DEFAULT '{}',
    description     text,
    search          tsvector GENERATED ALWAYS AS (
                        setweight(to_tsvector('english', title), 'A')
                        || setweight(to_tsvector('english', coalesce(description, '')), 'B')
                    ) STORED
);
COMMENT ON TABLE books IS 'The catalogue: one row per edition on sale, with its price and stock.';
COMMENT ON COLUMN books.isbn IS 'ISBN-13 of this edition.';
COMMENT ON COLUMN books.first_published IS 'When the work was first published (not this edition).';
COMMENT ON COLUMN books.price IS 'Current retail price in EUR, VAT included.';
COMMENT ON COLUMN books.stock_count IS 'Copies in the warehouse right now.';
COMMENT ON COLUMN books.in_print IS 'False when the publisher no longer prints this edition; it cannot be restocked.';
COMMENT ON COLUMN books.tags IS 'Lower-case genre and subject tags, used for browsing.';
COMMENT ON COLUMN books.reading_time IS 'Typical time an average reader needs to finish the book.';
COMMENT ON COLUMN books.dimensions_mm IS 'Height, width and depth of the printed book in millimetres; NULL for ebooks.';
COMMENT ON COLUMN books.restocked_at IS 'Last delivery to the warehouse, in the warehouse''s local time (no time zone).';
COMMENT ON COLUMN books.cover_thumbnail IS 'First bytes of the cover image (a stand-in for a thumbnail); NULL when there is none.';
COMMENT ON COLUMN books.metadata IS 'Publisher details: publisher, format (paperback, hardcover, ebook), language, original_language, translator and extras.';
COMMENT ON COLUMN books.search IS 'Full-text search vector over title (weight A) and description (weight B); generated.';

CREATE INDEX books_author_id_idx ON books (author_id);
CREATE INDEX books_tags_idx ON books USING gin (tags);
CREATE INDEX books_search_idx ON books USING gin (search);
CREATE INDEX books_metadata_idx ON books USING gin (metadata jsonb_path_ops);

CREATE TABLE customers (
    customer_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    public_id    uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    email        varchar(254) NOT NULL CHECK (email LIKE '_%@_%._%'),
    full_name    text NOT NULL,
    city         text,
    country_code char(2) NOT NULL,
    joined_on    date NOT NULL,
    newsletter   boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE customers IS 'People with an account at the shop.';
COMMENT ON COLUMN customers.public_id IS 'Identifier shown to the customer (in URLs and e-mails) instead of customer_id.';
COMMENT ON COLUMN customers.email IS 'Login and contact address; unique regardless of case.';
COMMENT ON COLUMN customers.newsletter IS 'Whether the customer agreed to receive the monthly newsletter.';

CREATE UNIQUE INDEX customers_email_lower_key ON customers (lower(email));

CREATE TABLE orders (
    order_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id  bigint NOT NULL REFERENCES customers (customer_id),
    status       order_status NOT NULL DEFAULT 'pending',
    placed_at    timestamptz NOT NULL,
    shipped_at   timestamptz,
    shipping_fee numeric(10,2) NOT NULL DEFAULT 0 CHECK (shipping_fee >= 0),
    is_gift      boolean NOT NULL DEFAULT false,
    note         text,
    CONSTRAINT orders_shipped_after_placed CHECK (shipped_at IS NULL OR shipped_at >= placed_at),
    CONSTRAINT orders_shipped_status CHECK (
        (status IN ('shipped', 'delivered', 'refunded')) = (shipped_at IS NOT NULL)
    )
);
COMMENT ON TABLE orders IS 'One row per checkout. Money amounts are in EUR; the order total is the sum of its items plus shipping_fee.';
COMMENT ON COLUMN orders.status IS 'Where the order is in its life cycle; see type order_status.';
COMMENT ON COLUMN orders.shipped_at IS 'When the parcel left the warehouse; NULL until then (and for cancelled orders).';
COMMENT ON COLUMN orders.note IS 'Free-text note from the customer or from customer service.';

CREATE INDEX orders_customer_id_placed_at_idx ON orders (customer_id, placed_at DESC);
CREATE INDEX orders_open_idx ON orders (placed_at) WHERE status IN ('pending', 'paid');

CREATE TABLE order_items (
    order_id     bigint NOT NULL REFERENCES orders (order_id) ON DELETE CASCADE,
    line_no      smallint NOT NULL CHECK (line_no > 0),
    book_id      integer NOT NULL REFERENCES books (book_id),
    quantity     integer NOT NULL CHECK (quantity > 0),
    unit_price   numeric(10,2) NOT NULL CHECK (unit_price >= 0),
    discount_pct numeric(5,2) NOT NULL DEFAULT 0 CHECK (discount_pct BETWEEN 0 AND 100),
    PRIMARY KEY (order_id, line_no),
    UNIQUE (order_id, book_id)
);
COMMENT ON TABLE order_items IS 'Lines of an order. A line''s amount is quantity * unit_price * (1 - discount_pct / 100), rounded to cents.';
COMMENT ON COLUMN order_items.unit_price IS 'Price of one copy when the order was placed (books.price may have changed since).';
COMMENT ON COLUMN order_items.discount_pct IS 'Discount on this line, in percent (10.00 means 10 %).';

CREATE INDEX order_items_book_id_idx ON order_items (book_id);

CREATE TABLE reviews (
    review_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    book_id       integer NOT NULL REFERENCES books (book_id),
    customer_id   bigint NOT NULL REFERENCES customers (customer_id),
    rating        smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
    title         varchar(120) NOT NULL,
    body          text,
    helpful_votes integer NOT NULL DEFAULT 0 CHECK (helpful_votes >= 0),
    reviewed_at   timestamptz NOT NULL,
    UNIQUE (book_id, customer_id)
);
COMMENT ON TABLE reviews IS 'Star ratings and reviews; customers review books they received, at most once per book.';
COMMENT ON COLUMN reviews.rating IS 'From 1 (poor) to 5 (excellent) stars.';
COMMENT ON COLUMN reviews.helpful_votes IS 'How many other customers marked the review as helpful.';

CREATE INDEX reviews_customer_id_idx ON reviews (customer_id);

-- Data -----------------------------------------------------------------------

INSERT INTO authors (author_id, full_name, birth_year, death_year, country_code, bio)
OVERRIDING SYSTEM VALUE VALUES
    (1, 'Jane Austen', 1775, 1817, 'GB', 'English novelist known for sharp social comedy about the landed gentry.'),
    (2, 'Herman Melville', 1819, 1891, 'US', 'American novelist, short-story writer and poet of the sea.'),
    (3, 'Mary Shelley', 1797, 1851, 'GB', 'English novelist who wrote Frankenstein at the age of eighteen.'),
    (4, 'Fyodor Dostoevsky', 1821, 1881, 'RU', 'Russian novelist who explored psychology, faith and morality.'),
    (5, 'Leo Tolstoy', 1828, 1910, 'RU', 'Russian writer regarded as one of the greatest novelists of all time.'),
    (6, 'Charles Dickens', 1812, 1870, 'GB', 'English writer and social critic of the Victorian era.'),
    (7, 'Virginia Woolf', 1882, 1941, 'GB', 'English modernist writer and pioneer of stream of consciousness.'),
    (8, 'Franz Kafka', 1883, 1924, 'CZ', 'Prague-born German-language writer of the absurd and the alienated.'),
    (9, 'Jules Verne', 1828, 1905, 'FR', 'French novelist whose adventure stories helped found science fiction.'),
    (10, 'Arthur Conan Doyle', 1859, 1930, 'GB', 'Scottish physician and writer, creator of Sherlock Holmes.'),
    (11, 'Mark Twain', 1835, 1910, 'US', 'American humorist, novelist and lecturer.'),
    (12, 'Louisa May Alcott', 1832, 1888, 'US', 'American novelist best known for Little Women.'),
    (13, 'Emily Brontë', 1818, 1848, 'GB', 'English novelist and poet; her only novel is Wuthering Heights.');

INSERT INTO books (book_id, isbn, title, author_id, first_published, pages, price, stock_count, in_print,
                   tags, reading_time, dimensions_mm, restocked_at, cover_thumbnail, metadata, description)
OVERRIDING SYSTEM VALUE VALUES
    (1, '9787835163834', 'Pride and Prejudice', 1, '1813-01-28', 432, 12.50, 14, true,
     '{classic,romance,satire}', '10 hours 45 minutes', '{198,129,24}', '2024-05-09 15:45:00', '\x89504e470d0a1a0a',
     '{"publisher": "Penguin Classics", "format": "paperback", "language": "en", "edition": 3, "series": null}',
     'Elizabeth Bennet matches wits with the proud Mr Darcy in Regency England.'),
    (2, '9784966762219', 'Emma', 1, '1815-12-23', 474, 10.99, 6, true,
     '{classic,romance,comedy}', '11 hours 50 minutes', '{198,129,27}', '2024-06-01 12:15:00', NULL,
     '{"publisher": "Penguin Classics", "format": "paperback", "language": "en"}',
     'A well-meaning matchmaker meddles in the love lives of her neighbours.'),
    (3, '9785866453269', 'Sense and Sensibility', 1, '1811-10-30', 409, 9.95, 0, true,
     '{classic,romance}', '10 hours 15 minutes', '{198,129,23}', '2024-05-29 13:15:00', NULL,
     '{"publisher": "Penguin Classics", "format": "paperback", "language": "en"}',
     'Two sisters, one sensible and one passionate, face love and heartbreak.'),
    (4, '9788423698295', 'Moby-Dick', 2, '1851-10-18', 720, 15.00, 9, true,
     '{classic,adventure,sea}', '18 hours', '{234,156,40}', '2024-05-29 16:45:00', '\x474946383961',
     '{"publisher": "Oxford World''s Classics", "format": "hardcover", "language": "en", "illustrated": true}',
     'Captain Ahab''s obsessive hunt for the white whale, narrated by Ishmael.'),
    (5, '9787957156837', 'Frankenstein', 3, '1818-01-01', 280, 8.75, 21, true,
     '{classic,horror,"science fiction",gothic}', '7 hours', '{198,129,16}', '2024-05-06 13:45:00', NULL,
     '{"publisher": "Penguin Classics", "format": "paperback", "language": "en", "awards": ["Readers'' Choice 2023"]}',
     'A young scientist creates a living being and is haunted by the consequences.'),
    (6, '9780645747102', 'Crime and Punishment', 4, '1866-12-01', 671, 14.25, 7, true,
     '{classic,psychological,russian}', '16 hours 45 minutes', '{198,129,35}', '2024-05-20 16:30:00', NULL,
     '{"publisher": "Vintage Classics", "format": "paperback", "language": "en", "original_language": "ru", "translator": "Richard Pevear and Larissa Volokhonsky"}',
     'A destitute student commits murder and wrestles with guilt in St Petersburg.'),
    (7, '9780472011872', 'The Brothers Karamazov', 4, '1880-11-01', 796, 18.50, 4, true,
     '{classic,philosophical,russian}', '20 hours', '{234,156,45}', '2024-05-05 10:30:00', NULL,
     '{"publisher": "Vintage Classics", "format": "hardcover", "language": "en", "original_language": "ru", "translator": "Richard Pevear and Larissa Volokhonsky"}',
     'Three brothers and a murdered father in a drama of faith, doubt and free will.'),
    (8, '9788137585584', 'War and Peace', 5, '1869-01-01', 1225, 22.00, 3, true,
     '{classic,historical,russian,war}', '30 hours 30 minutes', '{234,156,62}', '2024-05-10 16:30:00', NULL,
     '{"publisher": "Oxford World''s Classics", "format": "hardcover", "language": "en", "original_language": "ru", "translator": "Louise and Aylmer Maude", "volumes": 1, "edition": 2}',
     'Russian aristocratic families live through the Napoleonic invasion of 1812.'),
    (9, '9782260971870', 'Anna Karenina', 5, '1878-01-01', 864, 16.40, 5, true,
     '{classic,romance,russian,tragedy}', '21 hours 30 minutes', '{198,129,44}', '2024-06-08 16:00:00', NULL,
     '{"publisher": "Penguin Classics", "format": "paperback", "language": "en", "original_language": "ru", "translator": "Rosamund Bartlett"}',
     'A married aristocrat''s affair with Count Vronsky defies Russian society.'),
    (10, '9783580558833', 'Great Expectations', 6, '1861-08-01', 544, 11.25, 12, true,
     '{classic,"coming of age"}', '13 hours 30 minutes', '{198,129,30}', '2024-05-25 12:00:00', NULL,
     '{"publisher": "Penguin Classics", "format": "paperback", "language": "en"}',
     'The orphan Pip rises from the forge to London society, helped by a secret benefactor.'),
    (11, '9787113264857', 'A Tale of Two Cities', 6, '1859-11-26', 489, 9.50, 8, true,
     '{classic,historical,revolution}', '12 hours 15 minutes', '{198,129,26}', '2024-05-28 11:45:00', NULL,
     '{"publisher": "Penguin Classics", "format": "paperback", "language": "en"}',
     'Lives in London and Paris are drawn into the French Revolution.'),
    (12, '9789198595024', 'Mrs Dalloway', 7, '1925-05-14', 194, 10.00, 10, true,
     '{classic,modernist}', '5 hours', '{198,129,12}', '2024-05-05 15:30:00', NULL,
     '{"publisher": "Vintage Classics", "format": "paperback", "language": "en"}',
     'One June day in London as Clarissa Dalloway prepares for her party.'),
    (13, '9787251083129', 'To the Lighthouse', 7, '1927-05-05', 209, 10.50, 2, false,
     '{classic,modernist,family}', '5 hours 15 minutes', '{198,129,13}', NULL, NULL,
     '{"publisher": "Vintage Classics", "format": "paperback", "language": "en"}',
     'The Ramsay family and their guests on the Isle of Skye, across ten years.'),
    (14, '9781268498433', 'The Trial', 8, '1925-04-26', 255, 11.75, 6, true,
     '{classic,absurdist}', '6 hours 20 minutes', '{198,129,15}', '2024-05-19 10:15:00', NULL,
     '{"publisher": "Penguin Modern Classics", "format": "paperback", "language": "en", "original_language": "de", "translator": "Idris Parry"}',
     'Josef K. is arrested and prosecuted by an inaccessible authority for an unnamed crime.'),
    (15, '9785725023992', 'The Metamorphosis', 8, '1915-10-01', 96, 6.50, 25, true,
     '{classic,absurdist,novella}', '2 hours 30 minutes', '{178,111,8}', '2024-06-09 13:45:00', NULL,
     '{"publisher": "Penguin Modern Classics", "format": "paperback", "language": "en", "original_language": "de", "translator": "Susan Bernofsky", "awards": []}',
     'Gregor Samsa wakes up one morning transformed into a monstrous insect.'),
    (16, '9788626349468', 'Twenty Thousand Leagues Under the Seas', 9, '1870-06-20', 426, 12.00, 7, true,
     '{classic,adventure,"science fiction",sea}', '10 hours 40 minutes', '{198,129,25}', '2024-05-05 14:30:00', NULL,
     '{"publisher": "Oxford World''s Classics", "format": "paperback", "language": "en", "original_language": "fr", "translator": "William Butcher"}',
     'Professor Aronnax travels the oceans aboard Captain Nemo''s submarine Nautilus.'),
    (17, '9789184575863', 'Around the World in Eighty Days', 9, '1872-12-22', 248, 8.25, 11, true,
     '{classic,adventure,travel}', '6 hours 10 minutes', NULL, '2024-05-11 12:00:00', NULL,
     '{"publisher": "Penguin Classics", "format": "ebook", "language": "en", "original_language": "fr", "translator": "Michael Glencross"}',
     'Phileas Fogg wagers that he can circle the globe in eighty days.'),
    (18, '9784993774759', 'The Hound of the Baskervilles', 10, '1902-04-01', 256, 7.99, 18, true,
     '{classic,mystery,detective}', '6 hours 20 minutes', '{198,129,15}', '2024-05-18 13:45:00', '\xffd8ffe000104a464946',
     '{"publisher": "Penguin Classics", "format": "paperback", "language": "en", "series": "Sherlock Holmes", "series_position": 5}',
     'Sherlock Holmes investigates a legendary spectral hound on Dartmoor.'),
    (19, '9789591243294', 'Adventures of Huckleberry Finn', 11, '1884-12-10', 366, 9.99, 9, true,
     '{classic,adventure,satire}', '9 hours', '{198,129,21}', '2024-05-03 09:15:00', NULL,
     '{"publisher": "Penguin Classics", "format": "paperback", "language": "en"}',
     'Huck and the escaped slave Jim raft down the Mississippi River.'),
    (20, '9783815363072', 'Little Women', 12, '1868-09-30', 759, 13.40, 13, true,
     '{classic,"coming of age",family}', '19 hours', '{198,129,40}', '2024-05-16 14:45:00', NULL,
     '{"publisher": "Penguin Classics", "format": "paperback", "language": "en"}',
     'The four March sisters grow up in Massachusetts during the Civil War.');

INSERT INTO customers (customer_id, public_id, email, full_name, city, country_code, joined_on, newsletter)
OVERRIDING SYSTEM VALUE VALUES
    (1, '99d3c3a9-f079-43b1-a8be-297cb9e2f88b', 'alice.moreau@example.com', 'Alice Moreau', 'Lyon', 'FR', '2021-03-14', true),
    (2, '38b04807-e8ab-4b4b-a523-45e9e37af0d3', 'ben.okafor@example.org', 'Ben Okafor', 'Lagos', 'NG', '2021-07-02', false),
    (3, 'b4bafea8-85eb-48cd-b911-c20fc3887ef2', 'chiara.rossi@example.net', 'Chiara Rossi', 'Bologna', 'IT', '2021-11-20', true),
    (4, 'be49d9f4-0579-4411-a2de-90a92d55e081', 'daniel.kim@example.com', 'Daniel Kim', 'Seoul', 'KR', '2022-01-09', false),
    (5, '427841fc-7875-41e9-be88-32780d6cf9f3', 'eva.novak@example.com', 'Eva Novák', 'Prague', 'CZ', '2022-02-27', true),
    (6, 'da50c324-af85-4504-8ed8-725df18bb63d', 'farid.haddad@example.org', 'Farid Haddad', 'Montreal', 'CA', '2022-05-16', false),
    (7, '9bbd06a7-ea6e-4c96-b0e7-099c4e16b9b1', 'greta.lindqvist@example.com', 'Greta Lindqvist', 'Stockholm', 'SE', '2022-08-03', true),
    (8, '4e78cabe-fde2-4389-b5ed-4573bd385458', 'hiro.tanaka@example.net', 'Hiro Tanaka', 'Osaka', 'JP', '2022-10-21', false),
    (9, '7d3dce6b-eb89-4ed2-8d98-5ec71615c89b', 'isabel.garcia@example.com', 'Isabel García', 'Madrid', 'ES', '2023-01-12', true),
    (10, 'ef0b3463-8271-43e2-93ff-17a6e35fb4ed', 'james.oconnor@example.com', 'James O''Connor', 'Dublin', 'IE', '2023-03-30', false),
    (11, '974bec8d-daa3-4637-a09d-47d9d11bfcc8', 'kavya.iyer@example.org', 'Kavya Iyer', 'Bengaluru', 'IN', '2023-06-08', true),
    (12, 'df22aa77-0dab-402b-ae3f-5b04d9319ea5', 'liam.murphy@example.com', 'Liam Murphy', 'Boston', 'US', '2023-09-19', false),
    (13, 'ca8e6256-f8a3-4355-bb71-42c14b106174', 'mei.chen@example.net', 'Mei Chen', 'Vancouver', 'CA', '2023-12-01', true),
    (14, '8e7e003b-5275-4f14-b2c6-0e56c4b488cd', 'juergen.weiss@example.com', 'Jürgen Weiß', 'Berlin', 'DE', '2024-01-16', false),
    (15, '28126738-1999-486e-b32c-77d3c5322d58', 'olivia.brown@example.com', 'Olivia Brown', 'London', 'GB', '2024-02-20', true);

INSERT INTO orders (order_id, customer_id, status, placed_at, shipped_at, shipping_fee, is_gift, note)
OVERRIDING SYSTEM VALUE VALUES
    (1, 9, 'shipped', '2024-01-10 11:40:59+00', '2024-01-12 13:06:59+00', 3.95, true, 'Gift wrap please: birthday present for my sister.'),
    (2, 9, 'cancelled', '2024-01-17 15:35:33+00', NULL, 7.90, false, 'Customer ordered the wrong edition.'),
    (3, 12, 'refunded', '2024-01-22 20:13:50+00', '2024-01-23 21:40:50+00', 0.00, false, 'Arrived with a torn cover; refunded in full.'),
    (4, 8, 'delivered', '2024-01-29 02:51:44+00', '2024-01-30 06:33:44+00', 3.95, false, NULL),
    (5, 11, 'shipped', '2024-02-05 09:55:57+00', '2024-02-06 15:16:57+00', 4.50, true, NULL),
    (6, 2, 'paid', '2024-02-08 18:21:04+00', NULL, 4.50, false, NULL),
    (7, 10, 'delivered', '2024-02-12 23:37:53+00', '2024-02-14 07:31:53+00', 7.90, false, NULL),
    (8, 9, 'delivered', '2024-02-20 04:27:04+00', '2024-02-22 11:33:04+00', 7.90, false, NULL),
    (9, 15, 'delivered', '2024-02-24 11:30:42+00', '2024-02-26 17:19:42+00', 3.95, false, NULL),
    (10, 6, 'delivered', '2024-03-01 16:07:27+00', '2024-03-03 18:45:27+00', 4.50, true, 'Leave with the neighbour at number 12 if nobody is home.'),
    (11, 9, 'paid', '2024-03-06 16:24:33+00', NULL, 4.50, false, NULL),
    (12, 5, 'cancelled', '2024-03-10 19:08:30+00', NULL, 7.90, false, NULL),
    (13, 6, 'delivered', '2024-03-16 04:19:47+00', '2024-03-18 08:59:47+00', 0.00, false, NULL),
    (14, 14, 'shipped', '2024-03-19 09:32:09+00', '2024-03-21 15:36:09+00', 0.00, false, NULL),
    (15, 15, 'pending', '2024-03-25 15:22:14+00', NULL, 4.50, false, NULL),
    (16, 10, 'refunded', '2024-03-31 22:54:15+00', '2024-04-02 03:13:15+00', 3.95, false, 'Parcel lost in transit; refunded.'),
    (17, 14, 'delivered', '2024-04-06 06:27:05+00', '2024-04-07 11:23:05+00', 3.95, false, NULL),
    (18, 6, 'paid', '2024-04-12 16:19:16+00', NULL, 7.90, true, NULL),
    (19, 1, 'shipped', '2024-04-16 21:42:12+00', '2024-04-19 03:50:12+00', 7.90, false, NULL),
    (20, 11, 'delivered', '2024-04-23 04:26:48+00', '2024-04-25 07:45:48+00', 0.00, false, NULL),
    (21, 8, 'delivered', '2024-04-27 12:15:43+00', '2024-04-28 18:34:43+00', 4.50, false, NULL),
    (22, 3, 'pending', '2024-04-30 21:50:07+00', NULL, 4.50, false, NULL),
    (23, 4, 'delivered', '2024-05-04 06:38:06+00', '2024-05-05 12:24:06+00', 7.90, false, NULL),
    (24, 8, 'delivered', '2024-05-09 10:40:01+00', '2024-05-11 18:23:01+00', 0.00, true, 'Please include a gift receipt.'),
    (25, 5, 'delivered', '2024-05-12 18:21:24+00', '2024-05-14 20:29:24+00', 0.00, false, NULL);

INSERT INTO order_items (order_id, line_no, book_id, quantity, unit_price, discount_pct) VALUES
    (1, 1, 11, 1, 9.50, 0.00),
    (2, 1, 10, 3, 11.25, 15.00),
    (3, 1, 11, 2, 9.50, 0.00),
    (4, 1, 18, 2, 7.99, 0.00),
    (5, 1, 9, 1, 16.40, 10.00),
    (5, 2, 19, 1, 9.99, 0.00),
    (5, 3, 16, 1, 12.00, 0.00),
    (6, 1, 14, 1, 11.75, 10.00),
    (6, 2, 1, 1, 12.50, 0.00),
    (7, 1, 6, 2, 14.25, 0.00),
    (8, 1, 5, 3, 8.75, 0.00),
    (8, 2, 1, 1, 12.50, 0.00),
    (9, 1, 5, 1, 8.75, 0.00),
    (9, 2, 9, 1, 16.40, 0.00),
    (9, 3, 12, 3, 10.00, 0.00),
    (10, 1, 2, 3, 10.99, 0.00),
    (11, 1, 8, 3, 22.00, 0.00),
    (12, 1, 14, 1, 11.75, 10.00),
    (12, 2, 12, 1, 10.00, 0.00),
    (12, 3, 7, 2, 18.50, 10.00),
    (13, 1, 2, 3, 10.99, 0.00),
    (14, 1, 5, 1, 8.75, 0.00),
    (15, 1, 18, 1, 7.99, 0.00),
    (16, 1, 4, 1, 15.00, 10.00),
    (17, 1, 6, 2, 14.25, 0.00),
    (18, 1, 1, 1, 12.50, 0.00),
    (18, 2, 6, 2, 14.25, 0.00),
    (19, 1, 12, 3, 10.00, 0.00),
    (19, 2, 14, 2, 11.75, 0.00),
    (19, 3, 1, 1, 12.50, 0.00),
    (20, 1, 3, 1, 9.95, 0.00),
    (21, 1, 17, 1, 8.25, 0.00),
    (22, 1, 7, 2, 18.50, 0.00),
    (23, 1, 5, 1, 8.75, 0.00),
    (24, 1, 8, 2, 22.00, 0.00),
    (25, 1, 19, 2, 9.99, 0.00),
    (25, 2, 12, 3, 10.00, 0.00),
    (25, 3, 3, 1, 9.95, 10.00);

INSERT INTO reviews (review_id, book_id, customer_id, rating, title, body, helpful_votes, reviewed_at)
OVERRIDING SYSTEM VALUE VALUES
    (1, 18, 8, 5, 'Perfect on a foggy evening', 'Atmospheric, clever and genuinely creepy. Holmes at his best.', 12, '2024-02-13 08:58:00+00'),
    (2, 6, 10, 4, 'Heavy but rewarding', 'Dense in places, but Raskolnikov''s fever dream stays with you.', 7, '2024-02-19 09:23:00+00'),
    (3, 1, 9, 5, 'Still sparkling', 'Funny, sharp and romantic; Mr Darcy needs no introduction.', 21, '2024-02-29 17:10:00+00'),
    (4, 9, 15, 5, 'Worth every page', 'The best novel I have read in years; Levin''s chapters are a joy.', 9, '2024-03-02 18:46:00+00'),
    (5, 12, 15, 3, 'Beautiful, hard to follow', 'Lovely sentences, but the shifting viewpoints lost me at times.', 2, '2024-03-03 01:32:00+00'),
    (6, 2, 6, 3, 'Charming but slow', 'Emma is maddening and lovable; the middle drags a little.', 1, '2024-03-10 03:12:00+00'),
    (7, 5, 15, 4, 'Not the monster I expected', 'Far more thoughtful and sad than the films suggest.', 5, '2024-03-14 18:34:00+00'),
    (8, 6, 14, 5, 'Ein Meisterwerk', 'Gripping from the first chapter. The new translation reads beautifully.', 4, '2024-04-12 20:30:00+00'),
    (9, 17, 8, 4, 'Great fun', 'A breezy adventure; Passepartout steals the show.', 0, '2024-05-04 04:11:00+00'),
    (10, 3, 11, 4, 'Elinor deserves more credit', 'A quieter Austen, but the sisters'' bond is wonderfully drawn.', 3, '2024-05-06 18:25:00+00'),
    (11, 8, 8, 4, 'A commitment, but what a book', 'Took me three months. The battle chapters are astonishing.', 8, '2024-05-17 03:17:00+00'),
    (12, 5, 4, 5, 'Haunting', 'Read it in one sitting during a storm. Highly recommended.', 6, '2024-05-21 12:38:00+00'),
    (13, 12, 5, 4, 'A day in June', 'Rereading it after twenty years, I noticed so much more.', 1, '2024-05-23 00:55:00+00'),
    (14, 19, 5, 2, 'Dated in places', 'Important and often funny, but parts have aged badly.', 0, '2024-05-23 04:36:00+00'),
    (15, 3, 5, 5, 'My favourite Austen', 'Marianne and Elinor feel like real sisters. Perfect comfort read.', 3, '2024-05-28 05:21:00+00');

-- The rows above carry explicit ids; let new rows continue after them.
ALTER TABLE authors ALTER COLUMN author_id RESTART WITH 100;
ALTER TABLE books ALTER COLUMN book_id RESTART WITH 100;
ALTER TABLE customers ALTER COLUMN customer_id RESTART WITH 100;
ALTER TABLE orders ALTER COLUMN order_id RESTART WITH 100;
ALTER TABLE reviews ALTER COLUMN review_id RESTART WITH 100;

-- Views ----------------------------------------------------------------------

CREATE VIEW book_sales_summary AS
SELECT b.book_id,
       b.title,
       a.full_name                      AS author,
       b.price,
       coalesce(s.copies_sold, 0)       AS copies_sold,
       coalesce(s.order_count, 0)       AS order_count,
       coalesce(s.revenue, 0.00)        AS revenue,
       coalesce(r.review_count, 0)      AS review_count,
       r.average_rating
FROM books b
JOIN authors a ON a.author_id = b.author_id
LEFT JOIN (
    SELECT oi.book_id,
           sum(oi.quantity)                                                      AS copies_sold,
           count(DISTINCT oi.order_id)                                           AS order_count,
           sum(round(oi.quantity * oi.unit_price * (1 - oi.discount_pct / 100), 2)) AS revenue
    FROM order_items oi
    JOIN orders o ON o.order_id = oi.order_id
    WHERE o.status NOT IN ('cancelled', 'refunded')
    GROUP BY oi.book_id
) s ON s.book_id = b.book_id
LEFT JOIN (
    SELECT book_id, count(*) AS review_count, round(avg(rating), 2) AS average_rating
    FROM reviews
    GROUP BY book_id
) r ON r.book_id = b.book_id;
COMMENT ON VIEW book_sales_summary IS
    'Per book: copies sold, distinct orders and revenue (EUR, after discounts, excluding cancelled and refunded orders), and review statistics.';
COMMENT ON COLUMN book_sales_summary.revenue IS 'Sum of line amounts after discount, excluding shipping.';
COMMENT ON COLUMN book_sales_summary.average_rating IS 'Mean star rating rounded to 2 decimals; NULL when the book has no reviews.';

-- Row estimates for the planner (and for anyone reading pg_class.reltuples).
ANALYZE authors, books, customers, orders, order_items, reviews;

COMMIT;

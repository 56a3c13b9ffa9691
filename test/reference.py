#!/usr/bin/env python3
"""test/reference.py: writes or checks docs/reference.md.

The reference is generated, so that it cannot drift from the extension:
  - every public function (schema personalisation, not an internal helper):
    its signature with defaults, its result, the roles that may call it (the
    access map), what it does (the comment above its C function, or above
    its CREATE FUNCTION), every error its C code raises (each ereport(ERROR)
    of the C function and of the C functions it calls, with SQLSTATE, message
    and hint), and one example (EXAMPLES below);
  - every public view with its columns (the comment above its CREATE VIEW);
  - every setting with its type, unit, context, default and range, from
    pg_settings.
Run against a database with the extension (PGHOST, PGPORT, PGUSER, and the
database as the first argument):
  python3 test/reference.py DB --write   rewrites docs/reference.md
  python3 test/reference.py DB --check   exits 1 naming what is missing or differs
"""
import json
import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE = os.path.join(REPO, "docs", "reference.md")
ERRCODES = "/usr/include/postgresql/15/server/utils/errcodes.h"

# Internal helpers that keep a name without the leading underscore (the
# library's statements name them, and the same library serves 0.1.0
# databases, where only that name exists), and the function the install
# scripts end with.
INTERNAL = {"affinity_fold", "journey_run_checks", "journey_run_purchases", "apply_access_map"}

# One example per public function, in the order the reference lists them
# (tracking, identity, ranking, recommendations, delivery, operations,
# privacy, measurement) and the doc test runs them, after the setup block at
# the top of the reference.  norun marks the few that need
# what a throw-away database lacks (pg_cron in it).
EXAMPLES = {
    "track_page_view": "SELECT personalisation.track_page_view('ref-s1', 'ref-shoes', 'ref-boot');",
    "track_cart_add": "SELECT personalisation.track_cart_add('ref-s1', 'ref-boot', 2);",
    "track_cart_remove": "SELECT personalisation.track_cart_remove('ref-s1', 'ref-boot', 1);",
    "track_purchase": "SELECT personalisation.track_purchase('ref-s1', 'ref-o1',\n"
                      "  '[{\"product_id\": \"ref-boot\", \"quantity\": 1, \"unit_price\": 89.00}]');",
    "track_events": "SELECT personalisation.track_events('[{\"kind\": \"page_view\", \"session_id\": \"ref-s2\", \"product_id\": \"ref-sock\"},\n"
                    "  {\"kind\": \"cart_add\", \"session_id\": \"ref-s2\", \"product_id\": \"ref-sock\", \"quantity\": 3}]');",
    "track_session_end": "SELECT personalisation.track_session_end('ref-s2');",
    "track_subscription_start": "SELECT personalisation.track_subscription_start('ref-s1', 'ref-sock');",
    "track_subscription_stop": "SELECT personalisation.track_subscription_stop('ref-s1', 'ref-sock');",
    "track_refund": "SELECT personalisation.track_refund('ref-o1');",
    "set_consent": "SELECT personalisation.set_consent('ref-s1', 'email', true);",
    "identify": "SELECT personalisation.identify('ref-s1', 'ref-alice', 'alice@example.com') AS profile_id;",
    "identify_on_login": "CREATE TABLE ref_logins (session_id text, customer_id text, email text, logged_in_at timestamptz);\n"
                         "CREATE TRIGGER ref_login AFTER INSERT ON ref_logins\n"
                         "  FOR EACH ROW EXECUTE FUNCTION personalisation.identify_on_login('session_id', 'customer_id', 'email', 'logged_in_at');\n"
                         "INSERT INTO ref_logins VALUES ('ref-s2', 'ref-bob', 'bob@example.com', now());",
    "unmerge": "SELECT personalisation.unmerge(merge_id) FROM personalisation.merges\n"
               " WHERE customer_id = 'ref-bob' AND unmerged_at IS NULL;",
    "rank_products": "SELECT product_id, score, position, reason\n"
                     "  FROM personalisation.rank_products('ref-s1', ARRAY['ref-sock', 'ref-boot'], explain => true);",
    "rank_categories": "SELECT category_id, position FROM personalisation.rank_categories('ref-s1', ARRAY['ref-shoes', 'ref-socks']);",
    "rank_modules": "SELECT module, position FROM personalisation.rank_modules('ref-s1',\n"
                    "  '[{\"module\": \"hero-shoes\", \"category_id\": \"ref-shoes\"}, {\"module\": \"newsletter\"}]');",
    "holdout_arm": "SELECT personalisation.holdout_arm('ref-s1');",
    "also_bought": "SELECT * FROM personalisation.also_bought('ref-boot', 5);",
    "recommend_for_cart": "SELECT * FROM personalisation.recommend_for_cart('ref-s2', 5);",
    "claim_messages": "SELECT message_id, journey, channel FROM personalisation.claim_messages('ref-worker', 10);",
    "ack_message": "SELECT personalisation.ack_message(message_id, consumer => 'ref-worker')\n"
                   "  FROM personalisation.claim_messages('ref-worker', 1);",
    "ack_messages": "SELECT personalisation.ack_messages(ARRAY(SELECT message_id FROM personalisation.claim_messages('ref-worker', 10)),\n"
                    "                                    consumer => 'ref-worker');",
    "fail_message": "SELECT personalisation.fail_message(message_id, 'smtp: 451 try later', consumer => 'ref-worker')\n"
                    "  FROM personalisation.claim_messages('ref-worker', 1);",
    "run_due": "SELECT * FROM personalisation.run_due();",
    "maintain_partitions": "SELECT * FROM personalisation.maintain_partitions();",
    "schedule_jobs": "SELECT * FROM personalisation.schedule_jobs();   -- needs pg_cron in this database",
    "jobs": "SELECT job_name, schedule, runner FROM personalisation.jobs();",
    "worker_status": "SELECT pid, runs, errors, last_error FROM personalisation.worker_status();",
    "start_worker": "SELECT personalisation.start_worker();",
    "preloaded": "SELECT personalisation.preloaded();",
    "rebuild_affinity": "SELECT personalisation.rebuild_affinity(profile_id) FROM personalisation.profiles\n"
                        " WHERE customer_id = 'ref-alice';",
    "expire_session_affinity": "SELECT personalisation.expire_session_affinity();",
    "refresh_popularity": "SELECT * FROM personalisation.refresh_popularity();",
    "rebuild_complementarity": "SELECT * FROM personalisation.rebuild_complementarity();",
    "maintain_complementarity": "SELECT * FROM personalisation.maintain_complementarity();",
    "pause_complementarity": "SELECT personalisation.pause_complementarity();",
    "forget_customer": "SELECT personalisation.forget_customer('ref-bob');",
    "export_customer": "SELECT personalisation.export_customer('ref-alice');",
    "ranking_attribution_window": "SELECT personalisation.ranking_attribution_window();",
    "repeat_order_window": "SELECT personalisation.repeat_order_window();",
    "uplift_test": "SELECT * FROM personalisation.uplift_test(1000, 60, 1000, 40);",
    "uplift_claim": "SELECT personalisation.uplift_claim('ranking', 'conversion', 2000, 'sessions', 1.5, 1.1, 2.0, 0.01);",
    "uplift_summary": "SELECT * FROM personalisation.uplift_summary();",
    "uplift_report_html": "SELECT length(personalisation.uplift_report_html()) > 0;",
}
NORUN = {"schedule_jobs"}

# What a SQL-language function does, where no C comment says it.
SQL_FUNCTIONS = {}

SETUP = """INSERT INTO personalisation.categories (category_id, parent_id, name) VALUES
  ('ref-clothing', NULL, 'Clothing'), ('ref-shoes', 'ref-clothing', 'Shoes'), ('ref-socks', 'ref-clothing', 'Socks');
INSERT INTO personalisation.products (product_id, category_id, name, price, brand, subscribable) VALUES
  ('ref-boot', 'ref-shoes', 'Walking boot', 89.00, 'Trail', false),
  ('ref-sock', 'ref-socks', 'Wool socks', 9.50, 'Trail', true);"""


def psql(db, sql):
    """Runs sql in db and returns its single value."""
    out = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql],
                         check=True, capture_output=True, text=True).stdout
    return out.strip()


def catalogue(db):
    """Reads the public functions, views and settings from the database."""
    functions = json.loads(psql(db, """
SELECT coalesce(json_agg(f ORDER BY f.name, f.args), '[]') FROM (
  SELECT p.proname AS name, pg_get_function_arguments(p.oid) AS args,
         pg_get_function_result(p.oid) AS result, p.prosrc AS symbol, l.lanname AS language,
         (SELECT coalesce(json_agg(DISTINCT m.role_name), '[]') FROM personalisation.access_map m
           WHERE m.object_name = p.proname) AS roles
    FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
   WHERE p.pronamespace = 'personalisation'::regnamespace AND p.proname !~ '^_') f"""))
    views = json.loads(psql(db, """
SELECT coalesce(json_agg(v ORDER BY v.name), '[]') FROM (
  SELECT c.relname AS name,
         (SELECT json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod))
                          ORDER BY a.attnum)
            FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
         (SELECT coalesce(json_agg(DISTINCT m.role_name), '[]') FROM personalisation.access_map m
           WHERE m.object_name = c.relname) AS roles
    FROM pg_class c
   WHERE c.relnamespace = 'personalisation'::regnamespace AND c.relkind IN ('v', 'm') AND c.relname !~ '^_') v"""))
    settings = json.loads(psql(db, """
SELECT coalesce(json_agg(s ORDER BY s.name), '[]') FROM (
  SELECT name, vartype, coalesce(unit, '') AS unit, context, coalesce(boot_val, '') AS boot_val,
         coalesce(min_val, '') AS min_val, coalesce(max_val, '') AS max_val,
         coalesce(array_to_string(enumvals, ', '), '') AS enumvals, short_desc
    FROM pg_settings WHERE name LIKE 'personalisation.%') s"""))
    functions = [f for f in functions if f["name"] not in INTERNAL]
    order = list(EXAMPLES)
    functions.sort(key=lambda f: (order.index(f["name"]) if f["name"] in order else len(order), f["name"],
                                  "text" in f["args"].split("DEFAULT")[0].split(",")[-1]))
    views = [v for v in views if v["name"] not in INTERNAL]
    return functions, views, settings


def sqlstates():
    """Maps ERRCODE_ names to their five-character SQLSTATE."""
    codes = {}
    for line in open(ERRCODES):
        m = re.match(r"#define (ERRCODE_\w+)\s+MAKE_SQLSTATE\('(.)','(.)','(.)','(.)','(.)'\)", line)
        if m:
            codes[m.group(1)] = "".join(m.groups()[1:])
    return codes


def scan(text, start):
    """Splits the bracketed C text starting at start: returns the index just past its closing
    bracket and its top-level comma-separated parts (string literals skipped whole)."""
    depth, i, parts, part_start = 0, start, [], start + 1
    while i < len(text):
        c = text[i]
        if c == '"':
            i += 1
            while text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                parts.append(text[part_start:i].strip())
                return i + 1, parts
        elif c == "," and depth == 1:
            parts.append(text[part_start:i].strip())
            part_start = i + 1
        i += 1
    return i, parts


def balanced(text, start):
    """Returns the index just past the bracket that closes the one at start."""
    return scan(text, start)[0]


def c_strings(expr, macros):
    """Joins the string literals and string macros of a C expression."""
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"|\b([A-Z][A-Z0-9_]+)\b', expr)
    out = []
    for literal, macro in parts:
        if macro:
            if macro == "INT64_FORMAT":
                out.append("%ld")
            elif macro in macros:
                out.append(macros[macro])
            elif macro.startswith("CppAsString") or macro in ("NULL",):
                continue
            else:
                out.append("<" + macro + ">")
        else:
            out.append(literal.replace('\\"', '"').replace("\\n", " "))
    return "".join(out)


# Functions that raise an error their callers describe: the SQLSTATE, message
# and hint of each call come from the call's arguments ({n}: argument n as a
# string, "code n": argument n as an ERRCODE_ name).
WRAPPERS = {
    "ItemsError": {"code": "code 1", "message": "purchase item <value> {2}", "hint": None, "args": 3},
    "JsonArgument": {"code": "22P02", "message": "{2} is not valid JSON: \"<value>\"", "hint": "{3}", "args": 4},
    "BadEvent": {"code": "22023", "message": "event <value> {1}", "hint": None, "args": 2},
}

# Functions a C function calls through a table rather than by name.
TABLE_CALLS = {
    "track_events": ["track_page_view", "track_cart_add", "track_cart_remove", "track_purchase", "set_consent"],
}


def arguments(call):
    """The top-level comma-separated arguments of a C call's text, brackets included."""
    return scan(call, 0)[1]


def wrapped_errors(body, wrapper_hints, codes, macros):
    """The errors the calls in body to the WRAPPERS raise."""
    errors = []
    for name, wrapper in WRAPPERS.items():
        for m in re.finditer(r"\b%s\(" % name, body):
            args = arguments(body[m.end() - 1:balanced(body, m.end() - 1)])
            if len(args) < wrapper["args"]:
                continue

            def argument(match):
                return format_string(args[int(match.group(1))], macros)
            code = wrapper["code"]
            if code.startswith("code "):
                code = codes.get(args[int(code.split()[1])], args[int(code.split()[1])])
            message = re.sub(r"\{(\d)\}", argument, wrapper["message"])
            hint = re.sub(r"\{(\d)\}", argument, wrapper["hint"]) if wrapper["hint"] else wrapper_hints.get(name, "")
            errors.append((code, message, hint))
    return errors


def format_string(expr, macros):
    """The format string of a C expression: its leading string literals and macros, before
    the first argument that fills them in."""
    first = arguments("(" + expr + ")")[0]
    if re.match(r"psprintf\s*\(", first):
        first = arguments(first[first.index("("):])[0]
    return c_strings(first, macros)


def c_source():
    """Reads every C function of src/: its comment, its body's calls and its errors."""
    codes = sqlstates()
    functions = {}
    wrapper_hints = {}
    for name in sorted(os.listdir(os.path.join(REPO, "src"))):
        if not name.endswith(".c"):
            continue
        text = open(os.path.join(REPO, "src", name)).read()
        macros = {}
        for m in re.finditer(r'^#define\s+(\w+)\s+((?:"(?:[^"\\]|\\.)*"\s*(?:\\\n\s*)?)+)', text, re.M):
            macros[m.group(1)] = c_strings(m.group(2).replace("\\\n", ""), {})
        for m in re.finditer(r"^(\w+)\(([^;{()]*)\)\s*\n\{", text, re.M):
            fname = m.group(1)
            body_start = m.end() - 1
            body = text[body_start:balanced(text, body_start)]
            before = text[:m.start()]
            comment = ""
            cm = re.search(r"/\*((?:(?!\*/).)*)\*/\s*\n(?:[^\n]*\n){1,2}$", before, re.S)
            if cm:
                comment = " ".join(l.strip().lstrip("*").strip() for l in cm.group(1).splitlines()).strip()
            errors = []
            for e in re.finditer(r"\bereport\(\s*ERROR\s*,", body):
                call = body[e.start():balanced(body, e.start() + len("ereport"))]
                code = re.search(r"errcode\((ERRCODE_\w+)\)", call)
                msg = re.search(r"\berrmsg\(", call)
                hint = re.search(r"\berrhint\(", call)
                if not msg:
                    continue
                message = format_string(call[msg.end():balanced(call, msg.end() - 1) - 1], macros)
                hint_text = ""
                if hint:
                    h = call[hint.end():balanced(call, hint.end() - 1) - 1]
                    hint_text = format_string(h, macros)
                if fname in WRAPPERS:
                    wrapper_hints[fname] = hint_text
                elif code:
                    errors.append((codes.get(code.group(1), code.group(1)), message, hint_text))
            calls = set(re.findall(r"\b([A-Za-z_]\w*)\s*\(", body)) | set(TABLE_CALLS.get(fname, []))
            functions[fname] = {"comment": comment, "errors": errors, "calls": calls, "body": body,
                                "macros": macros}
    for f in functions.values():
        f["errors"].extend(wrapped_errors(f["body"], wrapper_hints, codes, f["macros"]))
    return functions


def errors_of(symbol, source):
    """Every error the C function symbol and the C functions it calls raise."""
    seen, stack, errors = set(), [symbol], []
    while stack:
        f = stack.pop()
        if f in seen or f not in source:
            continue
        seen.add(f)
        for e in source[f]["errors"]:
            if e not in errors:
                errors.append(e)
        stack.extend(sorted(source[f]["calls"] - seen))
    return errors


def sql_comments():
    """The comment above each CREATE FUNCTION / CREATE VIEW of the install script parts."""
    comments = {}
    parts = os.path.join(REPO, "sql", "install")
    for name in sorted(os.listdir(parts)):
        if not name.endswith(".sql"):
            continue
        lines = open(os.path.join(parts, name)).read().splitlines()
        for i, line in enumerate(lines):
            m = re.match(r"CREATE (?:OR REPLACE )?(?:FUNCTION|VIEW) personalisation\.(\w+)", line)
            if not m:
                continue
            j = i - 1
            block = []
            while j >= 0 and lines[j].startswith("--"):
                block.insert(0, lines[j][2:].strip())
                j -= 1
            if block and m.group(1) not in comments:
                comments[m.group(1)] = " ".join(block)
    return comments


def cell(text):
    """Escapes text for a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def render(db):
    """The text of docs/reference.md."""
    functions, views, settings = catalogue(db)
    source = c_source()
    comments = sql_comments()
    out = []
    w = out.append
    w("# Reference")
    w("")
    w("Generated by `test/reference.py` from the installed extension (`pg_proc`, `pg_settings`,")
    w("the access map), the comments above its C functions and SQL objects, and the `ereport`s of")
    w("its C code; `make test` fails when this file differs from what the generator writes, so it")
    w("names every public function, view and setting. Regenerate it with")
    w("`python3 test/reference.py DB --write` against a database with the extension.")
    w("")
    w("Everything lives in schema `personalisation`. Every timestamp parameter defaults to `now()`")
    w("and may be passed explicitly, so that backfills and tests can drive time.")
    w("")
    w("## Stability")
    w("")
    w("Stable, kept compatible within a major version (a change is announced in the CHANGELOG and")
    w("comes with an upgrade script): every function, view and setting listed below, their")
    w("parameters, result columns, SQLSTATEs and the tables of [the data model](#tables). Not")
    w("stable, and free to change in any release: every object whose name starts with `_` (granted")
    w("to no role, except EXECUTE to `personalisation_analyst` on the four helpers its reporting")
    w("views call), and the owner-only `affinity_fold`, `journey_run_checks`,")
    w("`journey_run_purchases` and `apply_access_map`, granted to no role either. The first three")
    w("keep their names because the library's own statements name them and the same library serves")
    w("databases not yet updated from 0.1.0, where only those names exist. Message texts and hints")
    w("may be improved in any release; match on the SQLSTATE.")
    w("")
    w("The errors listed under each function are those its C code raises itself (every")
    w("`ereport(ERROR)` of the function and of the functions it calls; `<value>` stands for what")
    w("the message names). Besides them any function can raise PostgreSQL's own: `42501` when the")
    w("caller's role lacks the grant, `25006` on a standby for a writing function, `57014` on")
    w("`statement_timeout`, `40P01` on a deadlock.")
    w("")
    w("The examples run in order, in a fresh database, after this setup (the doc test does so):")
    w("")
    w("```sql")
    w("CREATE EXTENSION IF NOT EXISTS personalisation;")
    w(SETUP)
    w("```")
    w("")
    w("## Functions")
    w("")
    for f in functions:
        text_overload = re.search(r"\b(items|events|modules) text\b", f["args"]) is not None
        heading = "`%s`" % f["name"] + (" with JSON as text" if text_overload else "")
        w("### %s" % heading)
        w("")
        w("```")
        w("personalisation.%s(%s)" % (f["name"], f["args"]))
        w("  RETURNS %s" % f["result"])
        w("```")
        w("")
        roles = [r for r in f["roles"] if r != "owner_only"]
        w("Who: %s." % (", ".join("`%s`" % r for r in roles) + " and the owner" if roles else "the owner only"))
        w("")
        text = source.get(f["symbol"], {}).get("comment") if f["language"] == "c" else None
        text = text or comments.get(f["name"]) or SQL_FUNCTIONS.get(f["name"], "")
        if text:
            w(text)
            w("")
        errors = errors_of(f["symbol"], source) if f["language"] == "c" else []
        if errors:
            w("| SQLSTATE | Message | Hint |")
            w("|---|---|---|")
            for code, message, hint in errors:
                w("| `%s` | %s | %s |" % (code, cell(re.sub(r"%[-0-9.]*l?[sdugf]|%ld", "<value>", message)),
                                          cell(re.sub(r"%[-0-9.]*l?[sdugf]|%ld", "<value>", hint))))
            w("")
        example = EXAMPLES.get(f["name"])
        if text_overload:
            w("The same function as the jsonb one above, for a string argument (a literal, or a")
            w("driver's untyped parameter): it parses the string itself, so that a JSON syntax error")
            w("gets `22P02` naming the argument, with the hint of what the function accepts.")
            w("")
        elif example:
            w("```sql" + (" norun" if f["name"] in NORUN else ""))
            w(example)
            w("```")
            w("")
    w("## Views")
    w("")
    for v in views:
        roles = [r for r in v["roles"] if r != "owner_only"]
        w("### `%s`" % v["name"])
        w("")
        w("Who: %s." % (", ".join("`%s`" % r for r in roles) + " and the owner" if roles else "the owner only"))
        w("")
        if comments.get(v["name"]):
            w(comments[v["name"]])
            w("")
        w("| Column | Type |")
        w("|---|---|")
        for c in v["columns"]:
            w("| `%s` | %s |" % (c["name"], c["type"]))
        w("")
    w("## Settings")
    w("")
    w("Context is PostgreSQL's: `superuser` settings are set by a superuser (`ALTER SYSTEM`,")
    w("`ALTER DATABASE … SET`, or `SET` in a superuser's session), `user` settings by any role")
    w("(`SET`), `sighup` ones in `postgresql.conf` or `ALTER SYSTEM` and a reload, `postmaster`")
    w("ones at server start. Defaults and ranges are in the setting's unit.")
    w("")
    w("| Setting | Type | Unit | Context | Default | Range | Meaning |")
    w("|---|---|---|---|---|---|---|")
    for s in settings:
        if s["enumvals"]:
            rng = s["enumvals"]
        elif s["min_val"] or s["max_val"]:
            rng = "%s – %s" % (s["min_val"], s["max_val"])
        else:
            rng = ""
        w("| `%s` | %s | %s | %s | `%s` | %s | %s |" % (s["name"], s["vartype"], s["unit"], s["context"],
                                                        s["boot_val"], rng, cell(s["short_desc"])))
    w("")
    w("## Tables")
    w("")
    w("The tables of the data model, sessions, idempotency, the input checks and the bounds of")
    w("every number are described in [ingestion.md](ingestion.md); the tables of each capability in")
    w("[identity.md](identity.md),")
    w("[ranking.md](ranking.md), [recommendations.md](recommendations.md),")
    w("[sequences.md](sequences.md) and [measurement.md](measurement.md); the shop writes")
    w("`categories` and `products`, everything else is written by the functions above.")
    return "\n".join(out) + "\n"


def check(db):
    """Exits 1 when docs/reference.md is not what render writes, naming what is missing."""
    text = open(REFERENCE).read()
    functions, views, settings = catalogue(db)
    problems = []
    for f in functions:
        if "### `%s" % f["name"] not in text:
            problems.append("function %s is missing from docs/reference.md" % f["name"])
        if f["name"] not in EXAMPLES:
            problems.append("function %s has no example: add one to EXAMPLES in test/reference.py" % f["name"])
    for v in views:
        if "### `%s`" % v["name"] not in text:
            problems.append("view %s is missing from docs/reference.md" % v["name"])
    rows = {}
    for line in text.splitlines():
        m = re.match(r"\| `(personalisation\.\w+)` \| (\w+) \| (\w*) \| (\w+) \| `([^`]*)` \|", line)
        if m:
            rows[m.group(1)] = (m.group(4), m.group(5))
    for s in settings:
        if s["name"] not in rows:
            problems.append("setting %s is missing from the settings table" % s["name"])
        elif rows[s["name"]] != (s["context"], s["boot_val"]):
            problems.append("setting %s: the table says context %s, default %s; pg_settings says %s, %s"
                            % (s["name"], rows[s["name"]][0], rows[s["name"]][1], s["context"], s["boot_val"]))
    for name in rows:
        if name not in {s["name"] for s in settings}:
            problems.append("the settings table lists %s, which pg_settings does not have" % name)
    if not problems and text != render(db):
        problems.append("docs/reference.md is not what test/reference.py writes: run it with --write")
    for p in problems:
        print("not ok - " + p)
    if problems:
        sys.exit(1)
    print("ok - docs/reference.md names every public function (%d), view (%d) and setting (%d), "
          "with the context and default pg_settings reports" % (len(functions), len(views), len(settings)))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[2] not in ("--write", "--check"):
        sys.exit(__doc__)
    if sys.argv[2] == "--write":
        open(REFERENCE, "w").write(render(sys.argv[1]))
    else:
        check(sys.argv[1])

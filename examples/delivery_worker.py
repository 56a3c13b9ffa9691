#!/usr/bin/python3
"""A reference delivery worker for the personalisation outbox.

It claims due messages with personalisation.claim_messages(), renders each
from its payload (an email for the email channel, a JSON notification for
push), hands it to an SMTP server or a push endpoint, and acknowledges it
(ack_message) or, when delivery fails, reports the failure (fail_message),
which retries it with backoff and dead-letters it after
personalisation.max_attempts.  Every call names this worker's consumer, so
another worker's lease can never be settled by mistake.

It needs only Debian's python3-psycopg (psycopg 3) and the standard library.
Connect as a login role granted personalisation_sender.

    python3 examples/delivery_worker.py --dsn 'dbname=shop user=mailer' \
        --smtp-host localhost --smtp-port 25 --from 'shop@example.com'

Options: --once (claim and deliver one batch, then exit), --batch N,
--lease SECONDS, --push-url URL (push messages are POSTed there as JSON; without
it they are failed with "no push endpoint configured"), --consumer NAME.
"""
import argparse
import json
import smtplib
import socket
import sys
import time
import urllib.request
from email.message import EmailMessage

import psycopg
from psycopg.rows import dict_row

SUBJECTS = {
    "cart_items": "You left something in your cart",
    "cart_social_proof": "Others are looking at what is in your cart",
    "cart_incentive": "A little something to complete your order",
}


def money(value):
    """A price as the email shows it."""
    return "%.2f" % float(value)


def render_email(message, sender):
    """The email for an email message: subject, plain-text body, recipient."""
    payload = message["payload"]
    recipient = payload["recipient"]["email"]
    if not recipient:
        raise ValueError("the payload has no recipient email")
    lines = []
    items = payload.get("items") or []
    if items:
        lines.append("In your cart:")
        for item in items:
            lines.append("  %d x %s at %s" % (item["quantity"], item["name"] or item["product_id"],
                                             money(item["unit_price"])))
            if item.get("url"):
                lines.append("    " + item["url"])
        lines.append("")
    for proof in payload.get("social_proof") or []:
        lines.append("%s: %s" % (proof.get("name") or proof.get("product_id"),
                                 ", ".join("%s %s" % (k, v) for k, v in sorted(proof.items())
                                           if k not in ("name", "product_id"))))
    incentive = payload.get("incentive")
    if incentive:
        if incentive["kind"] == "percent":
            offer = "%s%% off" % incentive["value"]
        elif incentive["kind"] == "amount":
            offer = "%s off" % money(incentive["value"])
        else:
            offer = "free shipping"
        lines.append("Use coupon %s for %s, valid until %s." % (incentive["code"], offer, incentive["expires_at"]))
        lines.append("")
    recommendations = payload.get("recommendations") or []
    if recommendations:
        lines.append("You may also like:")
        for rec in recommendations:
            lines.append("  %s at %s" % (rec["name"] or rec["product_id"], money(rec["unit_price"])))
        lines.append("")
    offer = payload.get("subscription_offer")
    if offer:
        lines.append("Subscribe to %s and never run out." % (offer.get("name") or offer.get("product_id")))
    email = EmailMessage()
    email["From"] = sender
    email["To"] = recipient
    email["Subject"] = SUBJECTS.get(message["template"], "News from the shop")
    email["X-Personalisation-Message"] = str(message["message_id"])
    email.set_content("\n".join(lines) + "\n")
    return email


def deliver(message, args):
    """Hands one claimed message to its channel; raises on failure."""
    if message["channel"] == "email":
        email = render_email(message, args.sender)
        with smtplib.SMTP(args.smtp_host, args.smtp_port, timeout=args.timeout) as smtp:
            smtp.send_message(email)
    else:
        if not args.push_url:
            raise RuntimeError("no push endpoint configured")
        body = json.dumps({"session_id": message["session_id"], "template": message["template"],
                           "payload": message["payload"]}).encode()
        request = urllib.request.Request(args.push_url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=args.timeout) as response:
            if response.status >= 300:
                raise RuntimeError("push endpoint answered %d" % response.status)


def run_batch(conn, args):
    """Claims one batch, delivers each message, settles each; returns how many were claimed."""
    messages = conn.execute(
        "SELECT message_id, channel, template, session_id, payload"
        "  FROM personalisation.claim_messages(%s, %s, make_interval(secs => %s))",
        (args.consumer, args.batch, args.lease)).fetchall()
    for message in messages:
        try:
            deliver(message, args)
        except (OSError, smtplib.SMTPException, ValueError, RuntimeError) as error:
            conn.execute("SELECT personalisation.fail_message(%s, %s, consumer => %s)",
                         (message["message_id"], "%s: %s" % (type(error).__name__, error), args.consumer))
            print("message %d failed: %s" % (message["message_id"], error), file=sys.stderr)
        else:
            conn.execute("SELECT personalisation.ack_message(%s, consumer => %s)",
                         (message["message_id"], args.consumer))
    return len(messages)


def main():
    """Parses the options and delivers batches until stopped (or once)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default="", help="libpq connection string (default: the PG* environment)")
    parser.add_argument("--consumer", default="mailer-%s" % socket.gethostname())
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--lease", type=int, default=300, help="seconds a claim is held")
    parser.add_argument("--smtp-host", default="localhost")
    parser.add_argument("--smtp-port", type=int, default=25)
    parser.add_argument("--from", dest="sender", default="shop@example.com")
    parser.add_argument("--push-url")
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--idle", type=float, default=1.0, help="seconds to sleep when nothing is due")
    parser.add_argument("--once", action="store_true")
    args = parser.parse_args()
    # autocommit: the claim commits before anything is sent, and each
    # acknowledgement commits on its own, so a crash re-sends at most the
    # message being delivered (after its lease expires)
    with psycopg.connect(args.dsn, autocommit=True, row_factory=dict_row) as conn:
        while True:
            claimed = run_batch(conn, args)
            if args.once:
                break
            if claimed == 0:
                time.sleep(args.idle)


if __name__ == "__main__":
    main()

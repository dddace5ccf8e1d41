"""Shared bits of the Kafka client programs that tests/tests/kafka_*.rs drive.

Every program takes the bootstrap address, the topic and its counts as arguments, runs for a
bounded time, and prints one JSON summary line on stdout (the member program prints one JSON
line per event). Diagnostics go to stderr.

Generated messages are numbered: message i of a run with prefix P has key `P-k{i}`, value
`P-v{i}` padded with '.' to --value-bytes, and headers `i=<i>` and `src=<client>`, so a reader
can check every key, value and header without being told them.
"""

import json
import sys
import time


def key_of(prefix, i):
    return f"{prefix}-k{i}"


def value_of(prefix, i, size=0):
    value = f"{prefix}-v{i}"
    return value + "." * max(0, size - len(value))


def index_of(prefix, key):
    """The number i of a generated key, or None for a key this prefix did not generate."""
    head = f"{prefix}-k"
    if key is None or not key.startswith(head):
        return None
    try:
        return int(key[len(head):])
    except ValueError:
        return None


def text(b):
    """Bytes as text for JSON (test data is ASCII); None stays None."""
    if b is None:
        return None
    if isinstance(b, str):
        return b
    return b.decode("utf-8", "backslashreplace")


def headers_dict(headers):
    return {text(k): text(v) for k, v in (headers or [])}


def emit(summary):
    sys.stdout.write(json.dumps(summary, sort_keys=True) + "\n")
    sys.stdout.flush()


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


class Deadline:
    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self):
        return max(0.0, self.end - time.monotonic())

    def passed(self):
        return time.monotonic() >= self.end


def add_security_args(ap):
    """TLS and SASL options of the confluent-kafka programs, as librdkafka names them."""
    ap.add_argument("--ssl-ca", help="connect over TLS, trusting this CA bundle")
    ap.add_argument("--sasl-mechanism", help="log in with SASL (PLAIN, SCRAM-SHA-512, ...)")
    ap.add_argument("--sasl-user")
    ap.add_argument("--sasl-password")


def security_conf(args):
    """The librdkafka settings for the options of add_security_args."""
    conf = {}
    if args.ssl_ca:
        conf.update({"security.protocol": "SSL", "ssl.ca.location": args.ssl_ca})
    if args.sasl_mechanism:
        conf.update({
            "security.protocol": "SASL_SSL" if args.ssl_ca else "SASL_PLAINTEXT",
            "sasl.mechanisms": args.sasl_mechanism,
            "sasl.username": args.sasl_user,
            "sasl.password": args.sasl_password,
        })
    return conf

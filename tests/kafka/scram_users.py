#!/usr/bin/env python3
"""confluent-kafka's AdminClient managing SCRAM users over Kafka (KIP-554), logged in with
SASL as --user: upserts --new-user with --new-password for SCRAM-SHA-256, describes it,
and prints what each step answered:
  {"altered": bool, "alter_error": "...", "described": [{"mechanism": "...", "iterations": n}],
   "describe_error": "..."}
A principal that may not manage users gets alter_error, and no describe is tried.
"""

import argparse

from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialUpsertion)

from common import emit, log


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--mechanism", default="SCRAM-SHA-256")
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--new-user", required=True)
    ap.add_argument("--new-password", required=True)
    ap.add_argument("--timeout", type=float, default=30)
    args = ap.parse_args()
    admin = AdminClient({"bootstrap.servers": args.bootstrap,
                         "client.id": "strata-test-scram-admin",
                         "security.protocol": "SASL_PLAINTEXT",
                         "sasl.mechanisms": args.mechanism,
                         "sasl.username": args.user, "sasl.password": args.password})
    out = {"altered": False, "alter_error": None, "described": [], "describe_error": None}
    upsert = UserScramCredentialUpsertion(
        args.new_user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096),
        args.new_password.encode())
    try:
        for _, future in admin.alter_user_scram_credentials([upsert]).items():
            future.result(timeout=args.timeout)
        out["altered"] = True
    except Exception as e:  # the test asserts on it
        out["alter_error"] = str(e)
        log(f"alter: {e}")
    if not out["altered"]:
        # confluent-kafka 2.16 frees a failed describe's result twice when the process ends
        # (glibc aborts); a refused alter is all a test of a refused principal needs.
        emit(out)
        return
    try:
        futures = admin.describe_user_scram_credentials([args.new_user])
        for _, future in futures.items():
            description = future.result(timeout=args.timeout)
            out["described"] = [
                {"mechanism": str(info.mechanism.name), "iterations": info.iterations}
                for info in description.scram_credential_infos
            ]
    except Exception as e:
        out["describe_error"] = str(e)
        log(f"describe: {e}")
    emit(out)


if __name__ == "__main__":
    main()

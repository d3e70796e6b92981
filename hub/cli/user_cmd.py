"""`cebhub user add|list` and `cebhub token create`: console users and API tokens."""

from __future__ import annotations

import argparse
import sys

from hub.cli.common import fail, print_json, settings, workspace


def _engine(args: argparse.Namespace):
    from hub.store.db import engine_for

    ws = workspace(args)
    return engine_for(settings(ws), ws)


def _codes(text: str | None) -> list[str]:
    return [c.strip() for c in (text or "").split(",") if c.strip()]


def cmd_user_add(args: argparse.Namespace) -> int:
    from hub.console.auth import UserError, add_user

    # The password comes from stdin so it never shows in the process list or shell history.
    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass(f"password for {args.name}: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        add_user(_engine(args), args.name, args.role, _codes(args.codes), password)
    except UserError as exc:
        return fail(str(exc))
    print(f"user {args.name} ({args.role}) added")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    from hub.console.auth import list_users

    print_json(list_users(_engine(args)))
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    from hub.console.auth import UserError, create_token

    try:
        token = create_token(_engine(args), args.name)
    except UserError as exc:
        return fail(str(exc))
    print(token)  # shown this once; only its hash is kept
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from hub.console.auth import UserRole

    u = sub.add_parser("user", help="console users")
    us = u.add_subparsers(dest="user_command", metavar="ACTION")
    us.required = True
    a = us.add_parser("add", help="add a user; the password is read from stdin")
    a.add_argument("name")
    a.add_argument("--role", required=True, choices=[r.value for r in UserRole])
    a.add_argument("--codes", metavar="C[,C…]", help="an operator's enterprise codes")
    a.set_defaults(func=cmd_user_add)
    ls = us.add_parser("list", help="the users, their roles and codes")
    ls.set_defaults(func=cmd_user_list)

    t = sub.add_parser("token", help="API bearer tokens")
    ts = t.add_subparsers(dest="token_command", metavar="ACTION")
    ts.required = True
    c = ts.add_parser("create", help="a new token for a user, printed once")
    c.add_argument("name", help="the user the token acts as")
    c.set_defaults(func=cmd_token_create)

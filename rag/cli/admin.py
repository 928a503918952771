"""The administration commands: ``rag user``, ``rag log``, ``rag backup``, ``rag restore``."""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from rag.config import Settings


def _accounts(settings: Settings):
    from rag.accounts import AccountError, Accounts

    if not settings.users_file:
        raise AccountError("RAG_USERS_FILE is not set: name the users file, e.g. "
                           "export RAG_USERS_FILE=/etc/govreport-rag/users.toml")
    return Accounts(settings.users_file)


def _password(name: str) -> str:
    """The new password: typed twice at a prompt, or the first line of stdin (scripts)."""
    from rag.accounts import AccountError

    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"password for {name}: ")
    if getpass.getpass("again: ") != first:
        raise AccountError("the two passwords differ; nothing was changed")
    return first


def cmd_user_add(args, settings: Settings) -> int:
    accounts = _accounts(settings)
    account = accounts.add(args.name, args.role, _password(args.name), replace=args.replace)
    print(f"{'updated' if args.replace else 'added'} {account.name} ({account.role}) in {accounts.path}")
    return 0


def cmd_user_list(args, settings: Settings) -> int:
    accounts = _accounts(settings).all()
    if args.json:
        print(json.dumps([{"name": a.name, "role": a.role, "added": a.added} for a in accounts.values()],
                         ensure_ascii=False, indent=2))
        return 0
    if not accounts:
        print(f"no users in {settings.users_file}; add one with: rag user add NAME --role admin")
    for a in sorted(accounts.values(), key=lambda a: a.name):
        print(f"{a.name:24} {a.role:7} added {a.added}")
    return 0


def cmd_user_remove(args, settings: Settings) -> int:
    accounts = _accounts(settings)
    account = accounts.remove(args.name)
    print(f"removed {account.name} ({account.role}) from {accounts.path}")
    return 0


def cmd_log(args, settings: Settings) -> int:
    from rag.index.audit import ACTIONS_ZH
    from rag.services import open_index

    entries = open_index(settings).audit.entries(limit=args.limit)
    if args.json:
        print(json.dumps([e.to_dict() for e in entries], ensure_ascii=False, indent=2))
        return 0
    if not entries:
        print("the audit log is empty")
    for e in entries:
        print(f"{e.at[:19].replace('T', ' ')}Z  {e.actor:24} {e.via:6} {ACTIONS_ZH.get(e.action, e.action):6} "
              f"{e.doc_id or '-':32} {e.changes()}")
    return 0


def cmd_backup(args, settings: Settings) -> int:
    from rag.index.backup import write_backup
    from rag.services import open_index

    index = open_index(settings)
    summary = write_backup(index, args.folder, progress=not args.quiet)
    print(f"backed up {index.location} to {summary.folder}: {summary.line()}")
    return 0


def cmd_restore(args, settings: Settings) -> int:
    from rag.index.backup import restore_backup
    from rag.services import open_index

    index = open_index(settings)
    summary = restore_backup(index, args.folder, progress=not args.quiet)
    print(f"restored {summary.folder} into {index.location}: {summary.line()}")
    print(f"(answers need RAG_EMBEDDINGS to name the same model: {summary.embedding_model})", file=sys.stderr)
    return 0


def cmd_chroma_server(args, settings: Settings) -> int:
    from rag.index.gate import serve_gated

    if not settings.chroma_token:
        print("error: set RAG_CHROMA_TOKEN to the token clients must send (e.g. `openssl rand -hex 24`)",
              file=sys.stderr)
        return 2
    return serve_gated(args.path, args.host, args.port, settings.chroma_token)


def add_admin_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``user``, ``log``, ``backup`` and ``restore`` to the ``rag`` parser's sub-commands."""
    from rag.accounts import ROLES

    user = sub.add_parser("user", help="accounts in RAG_USERS_FILE (the app's logins)")
    users = user.add_subparsers(dest="user_command", required=True)
    p = users.add_parser("add", help="add a user; the password is read from stdin or a prompt, never an argument")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--role", choices=ROLES, required=True,
                   help="reader: ask, search, read; editor: also upload, correct, remove; admin: also manage users")
    p.add_argument("--replace", action="store_true", help="give an existing user this role and a new password")
    p.set_defaults(func=cmd_user_add)
    p = users.add_parser("list", help="the users and their roles")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_user_list)
    p = users.add_parser("remove", help="remove a user (effective at the user's next request)")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=cmd_user_remove)

    p = sub.add_parser("log", help="the audit log of library changes (who, when, which report, before/after)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--limit", type=int, help="only the newest N entries")
    p.set_defaults(func=cmd_log)

    p = sub.add_parser("chroma-server", help="a Chroma server that asks for RAG_CHROMA_TOKEN (chroma run behind a token check)")
    p.add_argument("--path", required=True, help="Chroma's data folder")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=cmd_chroma_server)

    p = sub.add_parser("backup", help="write the index (texts, metadata, figures, vectors, audit log) to a folder")
    p.add_argument("folder", metavar="DIR")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", help="restore a backup into an empty index, checksums verified first")
    p.add_argument("folder", metavar="DIR")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_restore)

"""Accounts: who may use the app, and with which role (``RAG_USERS_FILE``, TOML).

The file holds one table a user, with an argon2 password hash (argon2-cffi) and a role::

    [users.alice]
    role = "editor"
    password = "$argon2id$v=19$m=65536,t=3,p=4$..."
    added = "2026-12-02T08:00:00"

Roles, each with what the one before may do: ``reader`` (ask, search, read the library),
``editor`` (also upload, correct and remove reports), ``admin`` (also manage users). The file is
written by ``rag user add/remove`` (atomically, mode 600) and read again whenever it changes, so
a removed user or a changed role takes effect at that user's next request, without a restart.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import os
import re
import tempfile
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path

from rag.errors import RagError

ROLES = ("reader", "editor", "admin")  # each may do what the ones before it may
ROLE_ZH = {"reader": "读者", "editor": "编辑", "admin": "管理员"}
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MIN_PASSWORD = 8
HOW_TO_ADD = "add one with: rag user add NAME --role admin  (RAG_USERS_FILE names the file)"


class AccountError(RagError, ValueError):
    """A users file, user name, role or password the project cannot use."""


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    password_hash: str
    added: str = ""

    def may(self, role: str) -> bool:
        """Whether this account has ``role`` or a higher one."""
        return ROLES.index(self.role) >= ROLES.index(role)


def is_loopback(host: str) -> bool:
    """Whether a listen address only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Accounts:
    """The accounts in one users file; re-read when the file changes.

    Args:
        path: the TOML file (it may not exist yet: ``add`` creates it).

    Example:
        >>> accounts = Accounts("users.toml")
        >>> accounts.add("alice", "editor", "a long password")
        >>> accounts.verify("alice", "a long password").role
        'editor'
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self._seen: tuple | None = None
        self._accounts: dict[str, Account] = {}

    # --- reading ---------------------------------------------------------------------------

    def all(self) -> dict[str, Account]:
        """Every account by name (empty when the file does not exist)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return {}
        seen = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        with self._lock:
            if seen != self._seen:
                self._accounts = self._parse(self.path.read_text(encoding="utf-8"))
                self._seen = seen
            return dict(self._accounts)

    def _parse(self, text: str) -> dict[str, Account]:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise AccountError(f"{self.path}: not valid TOML: {exc}") from exc
        accounts = {}
        for name, entry in (data.get("users") or {}).items():
            if not isinstance(entry, dict) or entry.get("role") not in ROLES or not entry.get("password"):
                raise AccountError(f"{self.path}: user {name!r} needs a role ({', '.join(ROLES)}) and a password "
                                   "hash; rewrite it with: rag user add NAME --role ROLE --replace")
            accounts[name] = Account(name, entry["role"], entry["password"], str(entry.get("added", "")))
        return accounts

    def get(self, name: str | None) -> Account | None:
        """The account of ``name`` (None when there is no such user, or no longer)."""
        return self.all().get(name) if name else None

    def verify(self, name: str, password: str) -> Account | None:
        """The account if ``password`` is its password, else None (the login check)."""
        from argon2 import PasswordHasher
        from argon2.exceptions import InvalidHashError, VerificationError

        account = self.get((name or "").strip())
        if account is None or not password:
            return None
        try:
            PasswordHasher().verify(account.password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        return account

    # --- writing (rag user) --------------------------------------------------------------

    def add(self, name: str, role: str, password: str, replace: bool = False) -> Account:
        """Add a user (or, with ``replace``, give an existing one a new role and password).

        Args:
            name: letters, digits and ``_ . @ -``, up to 64 characters.
            role: ``reader``, ``editor`` or ``admin``.
            password: at least ``MIN_PASSWORD`` characters; only its argon2 hash is stored.
            replace: overwrite an existing user of that name.
        """
        from argon2 import PasswordHasher

        if not NAME.match(name or ""):
            raise AccountError(f"user name {name!r}: use letters, digits and _ . @ - (up to 64 characters)")
        if role not in ROLES:
            raise AccountError(f"role {role!r}: choose one of {', '.join(ROLES)}")
        if len(password or "") < MIN_PASSWORD:
            raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")
        if name in self.all() and not replace:
            raise AccountError(f"user {name!r} already exists in {self.path}; "
                               f"to change it: rag user add {name} --role {role} --replace")
        account = Account(name, role, PasswordHasher().hash(password),
                          _dt.datetime.now().isoformat(timespec="seconds"))
        self._write(lambda users: users.__setitem__(name, account))
        return account

    def remove(self, name: str) -> Account:
        """Remove a user; raises ``AccountError`` when there is none of that name."""
        account = self.get(name)
        if account is None:
            raise AccountError(f"no user {name!r} in {self.path}; see: rag user list")
        self._write(lambda users: users.pop(name))
        return account

    def _write(self, change) -> None:
        """Apply ``change`` to the accounts and write the file atomically, readable by its owner only."""
        import tomlkit

        with self._lock:
            text = self.path.read_text(encoding="utf-8") if self.path.exists() else ""
            document = tomlkit.parse(text)  # keeps the comments an administrator wrote
            users = dict(self._parse(text))
            change(users)
            table = tomlkit.table(is_super_table=True)
            for account in users.values():
                entry = tomlkit.table()
                entry.update({"role": account.role, "password": account.password_hash, "added": account.added})
                table[account.name] = entry
            document["users"] = table
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    out.write(tomlkit.dumps(document))
                os.chmod(temp, 0o600)
                os.replace(temp, self.path)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
            self._seen = None


def serving_check(users_file: str | None, host: str) -> Accounts | None:
    """The accounts the app logs users in with; refuses a setup that would let anyone in.

    Args:
        users_file: ``RAG_USERS_FILE`` (None: no accounts).
        host: the address the app will listen on.

    Raises:
        AccountError: no users file and a non-loopback ``host``; a users file without accounts.
    """
    if not users_file:
        if not is_loopback(host):
            raise AccountError(
                f"refusing to serve on {host} without accounts: anyone who can reach it could change the "
                f"library. Set RAG_USERS_FILE to a users file and {HOW_TO_ADD}; or serve on 127.0.0.1.")
        return None
    accounts = Accounts(users_file)
    if not accounts.all():
        raise AccountError(f"RAG_USERS_FILE={users_file}: no accounts in it (or no such file); {HOW_TO_ADD}")
    return accounts

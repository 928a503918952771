"""The 用户管理 panel: an admin lists, adds and removes the app's accounts in the page.

The accounts are the users file's (``RAG_USERS_FILE``, ``rag.accounts.Accounts``), the same the
``rag user`` commands write; a change takes effect at each user's next request. Every handler
checks the admin role first, so a reader or editor calling ``/users_add`` through
``gradio_client`` is refused and nothing changes. Each change is written to the audit log
(``user_add`` / ``user_remove``: who, when, which account and role; never a password or hash).

Two changes are refused because they would lock the team out: an admin removing or demoting
their own account (another admin must do it), and leaving the file without any admin.
"""

from __future__ import annotations

import gradio as gr

from rag.accounts import MIN_PASSWORD, NAME, ROLE_ZH, ROLES, AccountError
from rag.web.backend import Services

USER_COLUMNS = ["用户", "角色", "添加时间"]
NO_ACCOUNTS = "未启用账户（没有设置 RAG_USERS_FILE），本机的所有人都可使用全部功能；添加账户见 docs/security.md。"


class UserHandlers:
    """List, add and remove accounts; admins only.

    Args:
        services: the app's services (``access.accounts`` is None without a users file).
    """

    def __init__(self, services: Services):
        self.services = services

    @property
    def enabled(self) -> bool:
        """Whether the app has accounts (the panel is shown only then)."""
        return self.services.access.accounts is not None

    def _name(self, request: gr.Request | None) -> str | None:
        request = self.services.access._request(request)
        return getattr(request, "username", None) if request is not None else None

    def is_admin(self, request: gr.Request = None) -> bool:
        """Whether the asker may manage users (the panel is visible to admins only)."""
        accounts = self.services.access.accounts
        if accounts is None:
            return False
        try:
            account = accounts.get(self._name(request))
        except AccountError:
            return False
        return account is not None and account.may("admin")

    def rows(self, request: gr.Request = None) -> list[list]:
        """The accounts: 用户, 角色, 添加时间 (``/users``); admins only."""
        self.services.access.check(request, "admin", "查看用户")
        accounts = self.services.access.accounts
        if accounts is None:
            return []
        return [[a.name, f"{ROLE_ZH[a.role]}（{a.role}）", a.added] for a in sorted(accounts.all().values(),
                                                                                key=lambda a: a.name)]

    def add(self, name: str | None, role: str | None, password: str | None, replace: bool = False,
            request: gr.Request = None) -> str:
        """Add an account (or, with ``replace``, give one a new role and password); admins only."""
        self.services.access.check(request, "admin", "管理用户")
        accounts = self.services.access.accounts
        if accounts is None:
            return NO_ACCOUNTS
        name = (name or "").strip()
        if not NAME.match(name):
            return f"用户名“{name}”不可用：只能用字母、数字和 _ . @ -，最多 64 个字符。"
        if role not in ROLES:
            return f"请选择角色：{'、'.join(f'{ROLE_ZH[r]}（{r}）' for r in ROLES)}。"
        if len(password or "") < MIN_PASSWORD:
            return f"密码至少 {MIN_PASSWORD} 个字符。"
        existing = accounts.get(name)
        if existing is not None and not replace:
            return f"用户 {name} 已存在（{ROLE_ZH[existing.role]}）；要改其角色或密码，请勾选“替换已有用户”。"
        if existing is not None and name == self._name(request) and role != "admin":
            return "不能降低自己的角色：请由另一位管理员操作，以免没有人能管理用户。"
        try:
            account = accounts.add(name, role, password, replace=replace)
        except AccountError as exc:
            return f"⚠️ 无法保存：{exc}"
        self._audit(request, "user_add", {"user": name, "role": existing.role} if existing else None,
                    {"user": name, "role": role})
        return f"已{'更新' if existing else '添加'}用户 {account.name}（{ROLE_ZH[account.role]}），下次请求起生效。"

    def remove(self, name: str | None, request: gr.Request = None) -> str:
        """Remove an account (effective at its next request); admins only, never one's own."""
        self.services.access.check(request, "admin", "管理用户")
        accounts = self.services.access.accounts
        if accounts is None:
            return NO_ACCOUNTS
        name = (name or "").strip()
        account = accounts.get(name) if name else None
        if account is None:
            return f"没有用户“{name}”。" if name else "请先填写或选择要删除的用户。"
        if name == self._name(request):
            return "不能删除自己的账户：请由另一位管理员操作。"
        if account.role == "admin" and sum(a.role == "admin" for a in accounts.all().values()) <= 1:
            return "这是唯一的管理员，不能删除。"
        try:
            accounts.remove(name)
        except AccountError as exc:
            return f"⚠️ 无法删除：{exc}"
        self._audit(request, "user_remove", {"user": name, "role": account.role}, None)
        return f"已删除用户 {name}（{ROLE_ZH[account.role]}），其下次请求起不能再使用本应用。"

    def _audit(self, request: gr.Request | None, action: str, before: dict | None, after: dict | None) -> None:
        try:
            index = self.services.ready().index
        except Exception:  # the account change stands; the log is unreachable (the status line says why)
            return
        with self.services.access.acting(request):
            index.audit.record(action, "", before, after)

"""Accounts, roles, the audit log, the Chroma server's token and fair use (docs/security.md).

The heavy tests start the real pieces: `rag chroma-server` (chroma run behind its token check),
`rag ingest` into it, and `python app.py` with a users file, used through gradio_client as an
anonymous visitor, a reader and an editor.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request

import gradio as gr
import pytest

from conftest import NEW_REPORT, ROOT, copy_reports, free_port, server_process, table_rows
from rag.accounts import AccountError, Accounts, is_loopback, serving_check
from rag.config import Settings
from rag.index.gate import token_ok
from rag.web.access import Access, Refused

TOKEN = "team-token-0123456789abcdef"


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RAG_USERS_FILE", "RAG_CHROMA_TOKEN", "RAG_CHROMA_URL")}
    return {**env, **extra}


def _rag(*args, env: dict, stdin: str | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], env=env, input=stdin, capture_output=True,
                          text=True, cwd=cwd or ROOT, timeout=600)


# --- accounts ---------------------------------------------------------------------------------


def test_accounts_hash_passwords_check_them_and_follow_the_file(tmp_path):
    path = tmp_path / "users.toml"
    accounts = Accounts(path)
    accounts.add("alice", "editor", "alice-password")
    accounts.add("bob", "reader", "bob-password")
    text = path.read_text()
    assert "alice-password" not in text and "$argon2id$" in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert accounts.verify("alice", "alice-password").role == "editor"
    assert accounts.verify("alice", "bob-password") is None and accounts.verify("nobody", "x" * 10) is None
    assert accounts.get("bob").may("reader") and not accounts.get("bob").may("editor")
    assert accounts.get("alice").may("editor") and not accounts.get("alice").may("admin")
    # Another process (rag user) changes the file: this one sees it at the next look.
    Accounts(path).remove("bob")
    assert accounts.get("bob") is None
    with pytest.raises(AccountError, match="already exists"):
        accounts.add("alice", "admin", "another-password")
    accounts.add("alice", "admin", "another-password", replace=True)
    assert accounts.verify("alice", "another-password").role == "admin"
    for name, role, password, reason in (("bad name", "reader", "long-enough", "user name"),
                                         ("carol", "owner", "long-enough", "role"),
                                         ("carol", "reader", "short", "at least 8")):
        with pytest.raises(AccountError, match=reason):
            accounts.add(name, role, password)
    (tmp_path / "broken.toml").write_text("[users.x]\nrole = 'reader'\n")
    with pytest.raises(AccountError, match="broken.toml"):
        Accounts(tmp_path / "broken.toml").all()


def test_rag_user_reads_the_password_from_stdin_never_an_argument(tmp_path):
    env = _env(RAG_USERS_FILE=str(tmp_path / "users.toml"))
    added = _rag("user", "add", "alice", "--role", "editor", env=env, stdin="alice-password\n")
    assert added.returncode == 0, added.stderr
    listed = json.loads(_rag("user", "list", "--json", env=env).stdout)
    assert [(u["name"], u["role"]) for u in listed] == [("alice", "editor")]
    assert Accounts(tmp_path / "users.toml").verify("alice", "alice-password")
    assert "--password" not in _rag("user", "add", "--help", env=env).stdout
    short = _rag("user", "add", "bob", "--role", "reader", env=env, stdin="short\n")
    assert short.returncode == 2 and "at least 8" in short.stderr and "Traceback" not in short.stderr
    assert _rag("user", "remove", "alice", env=env).returncode == 0
    gone = _rag("user", "remove", "alice", env=env)
    assert gone.returncode == 2 and "no user 'alice'" in gone.stderr
    unset = _rag("user", "list", env=_env())
    assert unset.returncode == 2 and "RAG_USERS_FILE is not set" in unset.stderr


def test_without_a_users_file_only_loopback_is_served(tmp_path):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.5") and not is_loopback("")
    assert serving_check(None, "127.0.0.1") is None
    with pytest.raises(AccountError, match="rag user add"):
        serving_check(None, "0.0.0.0")
    with pytest.raises(AccountError, match="no accounts"):
        serving_check(str(tmp_path / "missing.toml"), "0.0.0.0")
    # Both ways of starting the app refuse, with one line saying how to add users.
    for command, env in (([sys.executable, "app.py"], _env(RAG_HOST="0.0.0.0")),
                         ([sys.executable, "-m", "rag.cli", "serve", "--host", "0.0.0.0"], _env())):
        done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert done.returncode == 2, done.stderr
        assert "refusing to serve on 0.0.0.0" in done.stderr and "rag user add" in done.stderr
        assert "Traceback" not in done.stderr


def test_roles_and_question_slots(tmp_path):
    users = tmp_path / "users.toml"
    Accounts(users).add("rd", "reader", "reader-password")
    Accounts(users).add("ed", "editor", "editor-password")
    access = Access(Settings(index_dir=str(tmp_path / "i"), users_file=str(users), max_inflight_per_user=2))
    reader, editor = gr.Request(username="rd"), gr.Request(username="ed")
    access.check(reader, "reader", "提问")
    access.check(editor, "editor", "删除报告")
    with pytest.raises(Refused, match="无权删除报告.*读者"):
        access.check(reader, "editor", "删除报告")
    with pytest.raises(Refused, match="已被删除"):
        access.check(gr.Request(username="gone"), "reader", "提问")
    assert access.actor(editor) == ("ed", "web")
    # Two questions at once per user; the third is refused until one ends; others are unaffected.
    with access.question(reader), access.question(reader):
        with pytest.raises(Refused, match="RAG_MAX_INFLIGHT_PER_USER"):
            with access.question(reader):
                pass
        with access.question(editor):
            pass
    with access.question(reader):
        pass
    # Without accounts (loopback only) everyone may change the library; sessions have their own slots.
    open_access = Access(Settings(index_dir=str(tmp_path / "i"), max_inflight_per_user=1))
    open_access.check(gr.Request(session_hash="s1"), "admin", "删除报告")
    with open_access.question(gr.Request(session_hash="s1")):
        with open_access.question(gr.Request(session_hash="s2")):
            with pytest.raises(Refused):
                with open_access.question(gr.Request(session_hash="s1")):
                    pass


class _NoIndex:
    """Services with accounts and no index (the audit entry is skipped; the app test checks it)."""

    def __init__(self, access: Access):
        self.access = access

    def ready(self):
        raise RuntimeError("no index in this test")


def test_only_admins_manage_users_and_never_lock_the_team_out(tmp_path):
    from rag.web.users import UserHandlers

    users = tmp_path / "users.toml"
    Accounts(users).add("ad", "admin", "admin-password")
    Accounts(users).add("ed", "editor", "editor-password")
    handlers = UserHandlers(_NoIndex(Access(Settings(index_dir=str(tmp_path / "i"), users_file=str(users)))))
    admin, editor = gr.Request(username="ad"), gr.Request(username="ed")
    assert handlers.enabled and handlers.is_admin(admin) and not handlers.is_admin(editor)
    assert [row[0] for row in handlers.rows(admin)] == ["ad", "ed"]
    for call in (lambda: handlers.rows(editor), lambda: handlers.add("x1", "admin", "long-password", request=editor),
                 lambda: handlers.remove("ad", request=editor)):
        with pytest.raises(Refused, match="编辑.*需要「管理员」"):
            call()
    assert set(Accounts(users).all()) == {"ad", "ed"}
    # Checked before the file is touched, in Chinese.
    assert "至少 8 个字符" in handlers.add("nu", "reader", "short", request=admin)
    assert "不可用" in handlers.add("bad name", "reader", "long-password", request=admin)
    assert "已存在" in handlers.add("ed", "reader", "long-password", request=admin)
    assert "已添加" in handlers.add("nu", "reader", "new-password", request=admin)
    assert Accounts(users).verify("nu", "new-password").role == "reader"
    assert "已更新" in handlers.add("nu", "editor", "other-password", replace=True, request=admin)
    assert Accounts(users).verify("nu", "other-password").role == "editor"
    # No admin can remove or demote themselves, nor remove the last admin.
    assert "不能删除自己" in handlers.remove("ad", request=admin)
    assert "不能降低自己的角色" in handlers.add("ad", "reader", "admin-password", replace=True, request=admin)
    Accounts(users).add("ad2", "admin", "admin2-password")
    assert "已删除" in handlers.remove("ad", request=gr.Request(username="ad2"))
    assert "唯一的管理员" in handlers.remove("ad2")  # a trusted Python call: only the last-admin rule applies
    assert set(Accounts(users).all()) == {"ed", "nu", "ad2"}
    # Without accounts there is no panel.
    assert not UserHandlers(_NoIndex(Access(Settings(index_dir=str(tmp_path / "i"))))).enabled


def test_token_check_reads_both_of_chromas_headers():
    assert token_ok({"authorization": f"Bearer {TOKEN}"}, TOKEN)
    assert token_ok({"x-chroma-token": TOKEN}, TOKEN)
    assert not token_ok({"authorization": "Bearer wrong"}, TOKEN)
    assert not token_ok({"authorization": TOKEN}, TOKEN) and not token_ok({}, TOKEN)


# --- the team deployment, for real ----------------------------------------------------------


@pytest.fixture(scope="module")
def token_chroma(tmp_path_factory):
    """`rag chroma-server`: chroma run behind its token check, on a free loopback port."""
    path = tmp_path_factory.mktemp("token-chroma")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "rag.cli", "chroma-server", "--path", str(path / "db"), "--port", str(port)]
    with server_process(command, f"{url}/api/v2/heartbeat", path / "server.log", env=_env(RAG_CHROMA_TOKEN=TOKEN)):
        yield url


@pytest.fixture(scope="module")
def team_app(token_chroma, bundled_index, tmp_path_factory):
    """Two reports ingested into the token server by `rag ingest`, and `python app.py` over it
    with a users file (reader ``rd``, editors ``ed`` and ``ed2``, admin ``ad``); yields (url, env, users file)."""
    tmp = tmp_path_factory.mktemp("team")
    users = tmp / "users.toml"
    for name, role in (("rd", "reader"), ("ed", "editor"), ("ed2", "editor"), ("ad", "admin")):
        Accounts(users).add(name, role, f"{name}-password")
    env = _env(RAG_CHROMA_URL=token_chroma, RAG_CHROMA_TOKEN=TOKEN, RAG_COLLECTION="team", RAG_LLM="none",
               RAG_USERS_FILE=str(users), RAG_INDEX_DIR=str(tmp / "no-local-index"))
    folder = copy_reports(tmp / "reports", {"taiyuan-2024.txt", "mianyang-2024.txt"})
    done = _rag("ingest", "-q", str(folder), env=env, cwd=tmp)
    assert done.returncode == 0, done.stderr
    port = free_port()
    app_env = {**env, "RAG_HOST": "127.0.0.1", "RAG_PORT": str(port), "RAG_UPLOAD_DIR": str(tmp / "uploads"),
               "RAG_MAX_INFLIGHT_PER_USER": "2"}
    url = f"http://127.0.0.1:{port}/"
    with server_process([sys.executable, "app.py"], url, tmp / "app.log", start_timeout=180, env=app_env,
                        cwd=str(ROOT)):
        yield url, env, users, tmp


def _client(url: str, name: str):
    from gradio_client import Client

    return Client(url, verbose=False, auth=(name, f"{name}-password"))


def _status(url: str) -> int:
    try:
        return urllib.request.urlopen(url, timeout=30).status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.slow
def test_readers_are_refused_changes_and_editors_changes_are_audited(team_app):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    url, env, users, tmp = team_app
    # Anonymous: no page config, no API, no report page.
    with pytest.raises(Exception, match="credentials were not provided"):
        Client(url, verbose=False)
    with pytest.raises(ValueError, match="Could not login"):
        Client(url, verbose=False, auth=("rd", "wrong-password"))
    assert _status(f"{url}config") == 401 and _status(f"{url}gradio_api/info") == 401
    reader = _client(url, "rd")
    library = table_rows(reader.predict(api_name="/library"))
    taiyuan = next(r for r in library if r[0] == "太原市")[-1]
    assert _status(f"{url}report/{taiyuan}") == 401

    # A reader asks and reads, and is refused every change; nothing changes.
    answer = reader.predict("太原市2024年新收行政复议案件多少件？", mode="extractive", api_name="/ask")
    assert "1274" in answer["answer"] and answer["citations"][0]["region"] == "太原市"
    for args, api, doing in (((taiyuan,), "/remove", "删除报告"), ((taiyuan, "大同市", 2023), "/correct", "更正报告"),
                             (([handle_file(str(NEW_REPORT))],), "/upload", "上传报告")):
        with pytest.raises(AppError, match=f"无权{doing}：rd 的角色是「读者」"):
            reader.predict(*args, api_name=api)
    assert table_rows(reader.predict(api_name="/library")) == library
    assert not (tmp / "uploads").exists() or not any((tmp / "uploads").iterdir())
    assert not [row for row in table_rows(reader.predict(api_name="/audit")) if row[2] == "web"]

    # An editor uploads, corrects and removes; the log names the editor, with before and after.
    editor = _client(url, "ed")
    uploaded = table_rows(editor.predict([handle_file(str(NEW_REPORT))], api_name="/upload"))
    assert uploaded[0][:4] == ["datong-2024.txt", "已导入", "大同市", 2024], uploaded
    datong = next(r for r in table_rows(editor.predict(api_name="/library")) if r[0] == "大同市")[-1]
    assert "已更正" in editor.predict(datong, "", 2023, api_name="/correct")
    assert "已删除" in editor.predict(datong, api_name="/remove")
    shown = [row for row in table_rows(reader.predict(api_name="/audit")) if row[4] == datong]
    assert [(row[1], row[2], row[3]) for row in shown] == [("ed", "web", "删除"), ("ed", "web", "更正"),
                                                           ("ed", "web", "导入")]
    assert shown[1][5] == "year: 2024 → 2023"
    logged = json.loads(_rag("log", "--json", env=env).stdout)
    by_cli = [e for e in logged if e["via"] == "cli"]
    assert {e["after"]["region"] for e in by_cli} == {"太原市", "绵阳市"} and all("@" in e["actor"] for e in by_cli)
    mine = [e for e in logged if e["doc_id"] == datong]
    assert [e["action"] for e in mine] == ["ingest", "correct", "remove"]
    assert mine[1]["before"]["year"] == 2024 and mine[1]["after"]["year"] == 2023
    assert mine[2]["before"]["region"] == "大同市" and mine[2]["after"] is None
    assert "ed " in _rag("log", env=env).stdout

    # A user removed from the file is refused at the next request, without a restart.
    second = _client(url, "ed2")
    Accounts(users).remove("ed2")
    with pytest.raises(AppError, match="已被删除"):
        second.predict(taiyuan, "", 2024, api_name="/correct")
    chat = second.predict("太原市2024年新收行政复议案件多少件？", [], [], "extractive", api_name="/chat")
    assert "已被删除" in str(chat[1][-1]["content"]) and "1274" not in str(chat[1][-1]["content"])


@pytest.mark.slow
def test_an_admin_manages_users_in_the_page_and_the_log_says_who(team_app):
    from gradio_client.exceptions import AppError

    url, env, users, tmp = team_app
    admin, editor = _client(url, "ad"), _client(url, "ed")
    with pytest.raises(AppError, match="无权管理用户：ed 的角色是「编辑」"):
        editor.predict("intruder", "admin", "intruder-password", False, api_name="/users_add")
    assert "intruder" not in Accounts(users).all()
    assert "已添加" in admin.predict("newcomer", "reader", "newcomer-password", False, api_name="/users_add")
    assert ["newcomer", "读者（reader）"] == [row[:2] for row in table_rows(admin.predict(api_name="/users"))
                                          if row[0] == "newcomer"][0]
    # The new account logs in at once, without a restart, with the role given.
    newcomer = _client(url, "newcomer")
    with pytest.raises(AppError, match="无权删除报告"):
        newcomer.predict("any-doc", api_name="/remove")
    assert "不能删除自己" in admin.predict("ad", api_name="/users_remove")
    assert "已删除" in admin.predict("newcomer", api_name="/users_remove")
    assert "newcomer" not in Accounts(users).all()
    logged = [e for e in json.loads(_rag("log", "--json", env=env).stdout) if e["action"].startswith("user_")]
    assert [(e["actor"], e["action"], (e["after"] or e["before"])["user"]) for e in logged] == [
        ("ad", "user_add", "newcomer"), ("ad", "user_remove", "newcomer")]
    assert not any("password" in json.dumps(e) for e in logged)  # never a password or its hash


@pytest.mark.slow
def test_a_client_asking_in_a_loop_does_not_starve_another(team_app):
    url, *_ = team_app
    flooder, other = _client(url, "rd"), _client(url, "ed")
    question = "绵阳市2024年新收行政复议案件多少件？"
    # 20 questions sent at once by one client (a loop that does not wait for its answers)...
    jobs = [flooder.submit(question, mode="extractive", api_name="/ask") for _ in range(20)]
    # ...while another client asks: it is answered, and in about the time of a few answers.
    started = time.monotonic()
    answer = other.predict("太原市2024年新收行政复议案件多少件？", mode="extractive", api_name="/ask")
    waited = time.monotonic() - started
    assert "1274" in answer["answer"] and not answer.get("error"), answer
    results = [job.result(timeout=300) for job in jobs]
    refused = [r for r in results if r.get("error")]
    answered = [r for r in results if not r.get("error")]
    assert all("RAG_MAX_INFLIGHT_PER_USER" in r["answer"] for r in refused), refused[:1]
    assert all("1472" in r["answer"] for r in answered)
    assert refused and answered, (len(refused), len(answered))
    print(f"other client's answer after {waited:.2f} s; flood: {len(answered)} answered, {len(refused)} refused")


@pytest.mark.slow
def test_the_token_server_refuses_clients_without_the_token(token_chroma, tmp_path):
    for token, reason in ((None, "RAG_CHROMA_TOKEN is not set"), ("wrong-token-0123456789", "RAG_CHROMA_TOKEN is wrong")):
        env = _env(RAG_CHROMA_URL=token_chroma, RAG_COLLECTION="team", RAG_INDEX_DIR=str(tmp_path / "none"),
                   **({"RAG_CHROMA_TOKEN": token} if token else {}))
        done = _rag("list", env=env, cwd=tmp_path)
        assert done.returncode == 2, done.stdout
        assert reason in done.stderr and "Traceback" not in done.stderr
    # The raw API too: Chroma's 401 answer, with the setting named.
    request = urllib.request.Request(f"{token_chroma}/api/v2/tenants/default_tenant/databases/default_database/collections")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 401 and "RAG_CHROMA_TOKEN" in refused.value.read().decode()
    request.add_header("Authorization", f"Bearer {TOKEN}")
    assert urllib.request.urlopen(request, timeout=30).status == 200
    assert not (tmp_path / "none").exists()

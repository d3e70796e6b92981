"""Users, roles, password hashing, API tokens and the console's session secret."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Connection, Engine, insert, select, update

from hub.clock import utcnow
from hub.console.tables import audit, tokens, users
from hub.workspace import Workspace

SECRET_FILE = "console-secret"  # in the workspace's keys/ folder
TOKEN_PREFIX = "ceb_"
# scrypt cost: 16 MiB and ~50 ms per check; enough against offline guessing of a stolen table.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


class UserRole(StrEnum):
    """What a console user is (design §8)."""

    OPERATOR = "operator"  # enterprise clerk, bound to its enterprise codes
    CUSTOMS = "customs"  # customs officer: review queue
    INSPECTION = "inspection"  # inspection officer: review queue
    OPS = "ops"  # operations: sees everything, changes nothing of the business
    ADMIN = "admin"  # everything


@dataclass(frozen=True)
class Principal:
    """Who is calling: a logged-in user or the owner of a bearer token."""

    id: int
    name: str
    role: UserRole
    codes: frozenset[str]

    @property
    def scoped(self) -> bool:
        """An operator only ever sees records of its own codes."""
        return self.role == UserRole.OPERATOR

    @property
    def officer(self) -> bool:
        return self.role in (UserRole.CUSTOMS, UserRole.INSPECTION)

    @property
    def may_change_lists(self) -> bool:
        return self.role in (UserRole.OPERATOR, UserRole.ADMIN)

    @property
    def may_import(self) -> bool:
        return self.role in (UserRole.OPERATOR, UserRole.OPS, UserRole.ADMIN)


class UserError(ValueError):
    """A user or token could not be created as asked."""


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    got = hashlib.scrypt(
        password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
    )
    return hmac.compare_digest(got.hex(), digest)


# A hash to check against when the user does not exist, so timing does not reveal names.
_DUMMY_HASH = hash_password(secrets.token_hex(8))


def _principal(row) -> Principal:
    return Principal(row.id, row.name, UserRole(row.role), frozenset(row.codes or ()))


def add_user(engine: Engine, name: str, role: str, codes: list[str], password: str) -> int:
    try:
        role = UserRole(role)
    except ValueError:
        raise UserError(f"unknown role {role!r}; one of {', '.join(UserRole)}") from None
    if not name or len(name) > 64:
        raise UserError("a user name is 1 to 64 characters")
    if not password:
        raise UserError("the password is empty")
    if role == UserRole.OPERATOR and not codes:
        raise UserError("an operator needs --codes: the enterprise codes it acts for")
    with engine.begin() as conn:
        if conn.execute(select(users.c.id).where(users.c.name == name)).first():
            raise UserError(f"user {name} exists")
        result = conn.execute(
            insert(users).values(
                name=name,
                role=role,
                codes=sorted(set(codes)),
                password_hash=hash_password(password),
                disabled=False,
                created_at=utcnow(),
            )
        )
        return result.inserted_primary_key[0]


def list_users(engine: Engine) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(select(users).order_by(users.c.name)).all()
    return [
        {"name": r.name, "role": r.role, "codes": r.codes, "disabled": r.disabled} for r in rows
    ]


def authenticate(engine: Engine, name: str, password: str) -> Principal | None:
    with engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.name == name)).first()
    if row is None or row.disabled:
        check_password(password, _DUMMY_HASH)
        return None
    return _principal(row) if check_password(password, row.password_hash) else None


def user_by_id(engine: Engine, user_id: int) -> Principal | None:
    with engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.id == user_id)).first()
    return None if row is None or row.disabled else _principal(row)


def _token_hash(token: str) -> str:
    # Tokens are 256 random bits: a plain SHA-256 is enough, and lets us look them up.
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(engine: Engine, user_name: str) -> str:
    """A new API token for the user; the only time the token itself is seen."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        user_id = conn.execute(select(users.c.id).where(users.c.name == user_name)).scalar()
        if user_id is None:
            raise UserError(f"no user {user_name}; add it with `cebhub user add`")
        conn.execute(
            insert(tokens).values(
                user_id=user_id,
                token_hash=_token_hash(token),
                prefix=token[: len(TOKEN_PREFIX) + 6],
                created_at=utcnow(),
                revoked=False,
            )
        )
    return token


def principal_for_token(engine: Engine, token: str) -> Principal | None:
    with engine.begin() as conn:
        row = conn.execute(
            select(users, tokens.c.id.label("token_id"))
            .join(tokens, tokens.c.user_id == users.c.id)
            .where(tokens.c.token_hash == _token_hash(token), tokens.c.revoked.is_(False))
        ).first()
        if row is None or row.disabled:
            return None
        conn.execute(
            update(tokens).where(tokens.c.id == row.token_id).values(last_used_at=utcnow())
        )
    return _principal(row)


def record(conn: Connection, actor: str, action: str, target: str = "", detail: str = "") -> None:
    """One line of the audit trail, in the caller's transaction."""
    conn.execute(
        insert(audit).values(
            at=utcnow(), actor=actor, action=action, target=target[:128], detail=detail
        )
    )


def session_secret(ws: Workspace) -> str:
    """The key that signs session cookies: made once per workspace, kept in keys/."""
    path = ws.keys / SECRET_FILE
    if path.is_file():
        return path.read_text(encoding="ascii").strip()
    ws.keys.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(secret + "\n")
    try:
        os.link(tmp, path)  # first writer wins; a racing process reads the winner's secret
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text(encoding="ascii").strip()

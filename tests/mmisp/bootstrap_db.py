"""Create a fresh mmisp SQLite schema + org + site-admin user + API auth key.

Runs inside the mmisp venv. Reads DATABASE_URL from the environment (mmisp.db.config).
Usage: python bootstrap_db.py <api_key_out_file> [api_key]
If api_key is not given, a random 40-char key (MISP format) is generated.
The raw key is written to <api_key_out_file>; only its bcrypt hash is stored in the DB,
exactly as mmisp's own POST /auth_keys does (mmisp.api.routers.auth_keys._auth_key_add).
"""

import asyncio
import json
import os
import secrets
import string
import sys
import time

import mmisp.db.all_models  # noqa: F401  (registers every table on Base.metadata)
from mmisp.commandline_tool import setup as mmisp_setup
from mmisp.db.database import sessionmanager
from mmisp.db.models.auth_key import AuthKey
from mmisp.db.models.organisation import Organisation
from mmisp.db.models.role import Role
from mmisp.db.models.user import User
from mmisp.db.models.user_setting import UserSetting
from mmisp.util.crypto import hash_secret
from sqlalchemy import select

ORG_NAME = os.environ.get("MMISP_ORG", "WazuhMispTest")
ADMIN_EMAIL = os.environ.get("MMISP_ADMIN_EMAIL", "admin@wazuh-misp.test")
ADMIN_PASSWORD = os.environ.get("MMISP_ADMIN_PASSWORD", "Wazuh-Misp-Test-Passw0rd!")


async def main(key_file: str, api_key: str | None) -> None:
    if api_key is None:
        api_key = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(40))
    sessionmanager.init()
    await sessionmanager.create_all()
    async with sessionmanager.session() as session:
        # standard roles (site_admin=1 ... read_only=6) + ghost org, as `mmisp-db setup`
        await mmisp_setup.setup(session)

        org = (await session.execute(select(Organisation).where(Organisation.name == ORG_NAME))).scalar_one_or_none()
        if org is None:
            org = Organisation(
                name=ORG_NAME,
                description="wazuh-misp integration tests",
                type="ADMIN",
                nationality="",
                sector="",
                contacts="admin@wazuh-misp.test",
                landingpage="",
                local=True,
            )
            session.add(org)
            await session.flush()
            await session.refresh(org)

        role_id = (await session.execute(select(Role.id).where(Role.name == "site_admin"))).scalar_one()
        user = (await session.execute(select(User).where(User.email == ADMIN_EMAIL))).scalar_one_or_none()
        if user is None:
            user = User(
                email=ADMIN_EMAIL,
                password=hash_secret(ADMIN_PASSWORD),
                org_id=org.id,
                role_id=role_id,
                change_pw=0,
                termsaccepted=True,
            )
            session.add(user)
            await session.flush()
            await session.refresh(user)
            session.add(UserSetting(user_id=user.id, setting="user_name", value=json.dumps({"name": ADMIN_EMAIL})))
        org.created_by = user.id

        session.add(
            AuthKey(
                authkey=hash_secret(api_key),
                authkey_start=api_key[:4],
                authkey_end=api_key[-4:],
                created=int(time.time()),
                expiration=0,
                read_only=False,
                user_id=user.id,
                comment="wazuh-misp integration tests",
            )
        )
        await session.commit()
    await sessionmanager.close()

    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(api_key + "\n")
    print(f"bootstrap: org={ORG_NAME} user={ADMIN_EMAIL} key written to {key_file}")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else None))

"""Trino's security, as files Trino reads: its TLS key pair (a PKCS#12 keystore, and the certificate
as the CA file clients check it against), the password file of its two principals, and the access
rules that let only the owner write.

- **owner** (`BAZAAR_TRINO_OWNER_PASSWORD`): every privilege in the `hive` catalog, the one that
  creates the views (Dagster) and repairs partitions.  The sinks' table DDL and compaction's
  partition swaps go to the metastore directly, not through Trino.
- **reader** (`BAZAAR_TRINO_PASSWORD`): `SELECT` on the `hive` and `system` catalogs and nothing
  else: the reports, the dashboard, the checks and people.
- anyone else, and anyone without a password, is refused: Trino answers 401.

The local stack makes these at Trino's first start (`TrinoService.prepare`), from the passwords it
keeps at HOME (0600); the cluster shape's `trino-init` container makes them from the secrets
in `docker/`'s environment (`python -m bazaar.trino_security --help`).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
from pathlib import Path
from typing import Optional

import click

from bazaar.settings import private_write

# PBKDF2 with HMAC-SHA1 is what Trino's file authenticator checks a `iterations:salt:hash` line with
# (hex, lower case; at least 1,000 iterations).  Trino caches a checked password, so the cost is paid
# once per client, not per query.
ITERATIONS = 65_536
KEY_BYTES = 32
ALIAS = "trino"


def password_line(user: str, password: str, iterations: int = ITERATIONS) -> str:
    """One line of Trino's password file for `user`."""
    if ":" in user or not user:
        raise ValueError(f"a Trino user name must be non-empty and hold no colon: {user!r}")
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha1", password.encode(), salt, iterations, dklen=KEY_BYTES)
    return f"{user}:{iterations}:{salt.hex()}:{digest.hex()}"


def literal(name: str) -> str:
    """`name` as a Java regular expression matching only itself (`Pattern.quote`): the rules' user
    fields are patterns."""
    return "\\Q" + name.replace("\\E", "\\E\\\\E\\Q") + "\\E"


def access_rules(owner_name: str, reader_name: str) -> dict:
    """Trino's file-based access control: the owner may do anything, the reader may read (and see
    and stop only its own queries, and set no session property); a user no rule names may do
    nothing."""
    owner, reader = (literal(name) for name in (owner_name, reader_name))
    return {
        "queries": [
            {"user": owner, "allow": ["execute", "view", "kill"]},
            {"user": reader, "allow": ["execute"]},  # and its own queries, which a user always sees
        ],
        "system_session_properties": [{"user": owner, "allow": True}],
        "catalog_session_properties": [{"user": owner, "allow": True}],
        "catalogs": [
            {"user": owner, "allow": "all"},
            {"user": reader, "catalog": "(hive|system)", "allow": "read-only"},
        ],
        "schemas": [{"user": owner, "owner": True}],
        "tables": [
            # GRANT_SELECT: a view the owner made runs with the owner's rights (SECURITY DEFINER), and
            # Trino requires the grant option of its tables for someone else to read through it
            {"user": owner, "privileges": ["SELECT", "INSERT", "DELETE", "UPDATE", "OWNERSHIP", "GRANT_SELECT"]},
            {"user": reader, "privileges": ["SELECT"]},
        ],
        "procedures": [{"user": owner, "privileges": ["EXECUTE"]}],
        "system_information": [{"user": owner, "allow": ["read"]}],
    }


def write_auth(etc: Path, owner: tuple[str, str], reader: tuple[str, str]) -> None:
    """The password file and the access rules in Trino's `etc`, with the properties naming them."""
    private_write(etc / "password.db", "".join(password_line(u, p) + "\n" for u, p in (owner, reader)))
    private_write(etc / "rules.json", json.dumps(access_rules(owner[0], reader[0]), indent=2) + "\n")
    private_write(etc / "password-authenticator.properties",
                  f"password-authenticator.name=file\nfile.password-file={etc / 'password.db'}\n")
    private_write(etc / "access-control.properties",
                  f"access-control.name=file\nsecurity.config-file={etc / 'rules.json'}\n")


def ensure_keystore(keytool: Path, folder: Path, hosts: list[str], password: Optional[str] = None,
                    ca: Optional[Path] = None) -> tuple[Path, str]:
    """A self-signed key pair for `hosts` in `folder`/keystore.p12, and its certificate as `ca`
    (`folder`/ca.pem by default: what clients check Trino against); made once, kept across restarts.
    Returns the keystore and its password: `password`, else one made and kept in
    `folder`/keystore-password (0600)."""
    store, password_file, ca = folder / "keystore.p12", folder / "keystore-password", ca or folder / "ca.pem"
    names = ",".join(f"ip:{h}" if h.replace(".", "").isdigit() or ":" in h else f"dns:{h}"
                     for h in dict.fromkeys([*hosts, "localhost", "127.0.0.1"]))
    made_for = folder / "keystore-names"  # the names the certificate holds: other hosts, a new pair
    if password is None and password_file.exists():
        password = password_file.read_text().strip()
    common = ["-storetype", "PKCS12", "-keystore", str(store), "-storepass:env", "BAZAAR_KEYSTORE_PASSWORD"]
    run = lambda args, pw: subprocess.run(  # noqa: E731
        [str(keytool), *args, *common], check=True, capture_output=True, text=True, timeout=120,
        env={"PATH": os.environ.get("PATH", ""), "BAZAAR_KEYSTORE_PASSWORD": pw})  # never in argv
    if store.exists() and ca.exists() and not made_for.exists():  # made before the names were kept: keep it
        made_for.write_text(names)
    if store.exists() and ca.exists() and password and made_for.exists() and made_for.read_text() == names:
        try:
            run(["-list"], password)
        except subprocess.CalledProcessError:
            raise ValueError(f"{store} was made with another password: give the one it was made with, or remove "
                             f"it (and {ca}) to have a new key pair made") from None
        return store, password
    for stale in (store, ca):
        stale.unlink(missing_ok=True)
    if password is None:
        password = secrets.token_urlsafe(24)
        private_write(password_file, password + "\n")
    folder.mkdir(parents=True, exist_ok=True)
    ca.parent.mkdir(parents=True, exist_ok=True)
    run(["-genkeypair", "-alias", ALIAS, "-keyalg", "EC", "-groupname", "secp256r1", "-validity", "3650",
         "-dname", "CN=bazaar-trino", "-ext", f"san={names}"], password)
    os.chmod(store, 0o600)
    run(["-exportcert", "-rfc", "-alias", ALIAS, "-file", str(ca)], password)
    os.chmod(ca, 0o644)  # the certificate is public: every client reads it
    made_for.write_text(names)
    return store, password


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.argument("hosts", nargs=-1, required=True)
@click.option("--ca", "ca", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where the certificate goes, for the clients (a folder of its own: the key stays in FOLDER).")
@click.option("--uid", type=int, default=None, help="The user Trino runs as, who must own FOLDER's files.")
def main(folder: Path, hosts: tuple[str, ...], ca: Path, uid: Optional[int]) -> None:
    """The cluster shape's `trino-init`: Trino's password file, access rules and key pair in FOLDER, for
    the HOSTS clients reach it by, from the environment's BAZAAR_TRINO_OWNER_PASSWORD,
    BAZAAR_TRINO_PASSWORD and TRINO_KEYSTORE_PASSWORD."""
    try:
        owner = (os.environ.get("BAZAAR_TRINO_OWNER_USER", "owner"), os.environ["BAZAAR_TRINO_OWNER_PASSWORD"])
        reader = (os.environ.get("BAZAAR_TRINO_USER", "reader"), os.environ["BAZAAR_TRINO_PASSWORD"])
        keystore_password = os.environ["TRINO_KEYSTORE_PASSWORD"]
    except KeyError as missing:
        raise click.ClickException(f"{missing.args[0]} is not set: docker/README.md says how to make it")
    write_auth(folder, owner, reader)
    keytool = Path(os.environ.get("JAVA_HOME", "/usr")) / "bin" / "keytool"
    try:
        ensure_keystore(keytool, folder, list(hosts), keystore_password, ca)
    except ValueError as exc:
        raise click.ClickException(f"{exc} (docker/README.md: the trino-auth and trino-ca volumes)")
    if uid is not None:
        for path in folder.iterdir():
            os.chown(path, uid, -1)
    click.echo(f"Trino's password file, access rules and key pair are in {folder}; its certificate is {ca}")


if __name__ == "__main__":
    main()

"""`python -m ris_cli.milvus_access`: as Milvus' root user, give the product its own Milvus user.

For a Milvus with authorization on (docker-compose.yml turns it on). On a new Milvus, root's
well-known default password is replaced by MILVUS_ROOT_PASSWORD. Then the user named in
RIS_MILVUS_TOKEN (`user:password`) is created if it is missing, with a role allowing what the
product does to its collections (create, load, write, search, flush, drop) and nothing else: no
user or role management. Running it again changes nothing.
"""

from __future__ import annotations

import click
from pymilvus import MilvusClient, MilvusException

from ris.errors import IndexRequestError, SettingsError
from ris.index.milvus import GRPC_OPTIONS
from ris.settings import load_settings
from ris_cli.errors import one_line_errors
from ris_cli.output import stdout

ROLE = "ris_product"
# What every new Milvus with authorization on lets root sign in with.
DEFAULT_ROOT_PASSWORD = "Milvus"
GLOBAL_PRIVILEGES = ("CreateCollection", "DropCollection", "DescribeCollection", "ShowCollections")
COLLECTION_PRIVILEGES = (
    "CreateIndex",
    "IndexDetail",
    "Load",
    "GetLoadState",
    "GetLoadingProgress",
    "Release",
    "Insert",
    "Upsert",
    "Delete",
    "Search",
    "Query",
    "Flush",
    "GetFlushState",
    "GetStatistics",
)


def grant_product_access(client: MilvusClient, user: str, password: str) -> bool:
    """Make `user` (if missing) with the product's role; True when the user was created."""
    created = user not in client.list_users()
    if created:
        client.create_user(user, password)
    if ROLE not in client.list_roles():
        client.create_role(ROLE)
    for privilege in GLOBAL_PRIVILEGES:
        client.grant_privilege(ROLE, "Global", privilege, "*")
    for privilege in COLLECTION_PRIVILEGES:
        client.grant_privilege(ROLE, "Collection", privilege, "*")
    client.grant_role(user, ROLE)
    return created


def _root_client(uri: str, password: str) -> MilvusClient:
    """Root's client; on a Milvus still at the default password, that password is changed."""

    def sign_in(secret: str) -> MilvusClient:
        return MilvusClient(
            uri=uri, token=f"root:{secret}", dedicated=True, grpc_options=GRPC_OPTIONS
        )

    try:
        return sign_in(password)
    except MilvusException:
        if password == DEFAULT_ROOT_PASSWORD:
            raise
    client = sign_in(DEFAULT_ROOT_PASSWORD)
    client.update_password("root", DEFAULT_ROOT_PASSWORD, password)
    client.close()
    stdout.print("Milvus root password changed from the default")
    return sign_in(password)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--root-password",
    envvar="MILVUS_ROOT_PASSWORD",
    default=DEFAULT_ROOT_PASSWORD,
    help="Milvus root's password (or MILVUS_ROOT_PASSWORD); set in place of the default.",
)
@one_line_errors
def main(root_password: str) -> None:
    """Create the product's Milvus user (RIS_MILVUS_TOKEN) with the product's role."""
    settings = load_settings()
    user, _, password = settings.milvus_token.partition(":")
    if not user or not password:
        raise SettingsError("RIS_MILVUS_TOKEN must be user:password for the product's own user")
    try:
        client = _root_client(settings.milvus_uri, root_password)
        created = grant_product_access(client, user, password)
        client.close()
    except MilvusException as error:
        raise IndexRequestError(f"Milvus at {settings.milvus_uri}: {error.message}") from None
    stdout.print(f"Milvus user {user} {'created' if created else 'exists'}, role {ROLE} granted")


if __name__ == "__main__":
    main()

"""Signs in to sluice the way an MCP host does, with the official Python
SDK's OAuth client: the 401's resource metadata, the authorization server's
metadata, dynamic client registration, the authorization-code grant with
PKCE and a resource indicator, then MCP calls with the access token.

The browser is played by an HTTP client that logs in as the given user at
oidc-provider's development login and consent pages.

    python3 mcp_oauth_client.py <server url> <login> <scope> <sql>

prints the `query` tool's structured result as one JSON line.
"""

import asyncio
import json
import re
import sys
from urllib.parse import parse_qs, urljoin, urlparse

import httpx
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamablehttp_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

# Never opened: the "browser" stops at the redirect to it and reads the code.
REDIRECT_URI = "http://127.0.0.1:9/callback"


class Memory(TokenStorage):
    def __init__(self):
        self.tokens = None
        self.client = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class Browser:
    """Follows the authorization request through login and consent."""

    def __init__(self, login: str):
        self.login = login
        self.callback: tuple[str, str | None] | None = None

    async def open(self, url: str) -> None:
        async with httpx.AsyncClient(follow_redirects=False, timeout=30) as http:
            response = await http.get(url)
            for _ in range(20):
                if response.is_redirect:
                    target = urljoin(str(response.url), response.headers["location"])
                    if target.startswith(REDIRECT_URI):
                        query = parse_qs(urlparse(target).query)
                        if "error" in query:
                            raise RuntimeError(f"authorization refused: {query}")
                        self.callback = (query["code"][0], query.get("state", [None])[0])
                        return
                    response = await http.get(target)
                    continue
                if response.status_code != 200:
                    raise RuntimeError(f"{response.url}: {response.status_code} {response.text[:500]}")
                action = re.search(r'<form[^>]*action="([^"]+)"', response.text)
                if not action:
                    raise RuntimeError(f"no form at {response.url}: {response.text[:500]}")
                target = urljoin(str(response.url), action.group(1))
                if 'name="login"' in response.text:
                    form = {"prompt": "login", "login": self.login, "password": "any"}
                else:
                    form = {"prompt": "consent"}
                response = await http.post(target, data=form)
            raise RuntimeError("the authorization did not come back")

    async def come_back(self) -> tuple[str, str | None]:
        if self.callback is None:
            raise RuntimeError("no authorization code")
        return self.callback


async def main(server_url: str, login: str, scope: str, sql: str) -> None:
    browser = Browser(login)
    auth = OAuthClientProvider(
        server_url=server_url,
        client_metadata=OAuthClientMetadata(
            client_name="sluice e2e",
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code"],
            response_types=["code"],
            token_endpoint_auth_method="none",
            scope=scope,
        ),
        storage=Memory(),
        redirect_handler=browser.open,
        callback_handler=browser.come_back,
    )
    async with streamablehttp_client(server_url, auth=auth) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            result = await session.call_tool("query", {"sql": sql})
            if result.isError:
                raise RuntimeError(f"query failed: {result.content}")
            print(json.dumps(result.structuredContent))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))

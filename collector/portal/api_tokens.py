"""The caller's API tokens in the JSON API (collector.store.people; openapi.yaml).

Is: GET, POST /api/v1/portal/tokens and DELETE .../tokens/{name}: the logged-in user's own
tokens, listed by name and times (a token's value is in the POST's answer only, never kept).
Its routes join collector.portal.api's table.
Is not: how a bearer token logs a request in (collector.portal.auth).
"""

from __future__ import annotations

from aiohttp import web

from collector.appkeys import CLOCK
from collector.portal import inputs
from collector.portal.api import PREFIX, ROUTES, _body, _db, _who, api
from collector.portal.errors import NotFound
from collector.store import people


@ROUTES.get(f"{PREFIX}/tokens")
@api
async def list_tokens(request: web.Request) -> web.Response:
    """The caller's API tokens (names and times; values are never kept)."""
    principal = await _who(request)
    assert principal.user_id is not None
    tokens = await people.list_api_tokens(_db(request), principal.user_id)
    return web.json_response(
        {
            "tokens": [
                {
                    "name": t.name,
                    "created_at": t.created_at.isoformat(),
                    "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
                    "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
                }
                for t in tokens
            ]
        }
    )


@ROUTES.post(f"{PREFIX}/tokens")
@api
async def post_token(request: web.Request) -> web.Response:
    """A new API token for the caller: its value is in this answer only."""
    principal = await _who(request)
    assert principal.user_id is not None
    body = await _body(request, inputs.TokenRequest)
    token = await people.create_api_token(
        _db(request), principal.user_id, body.name, request.app[CLOCK]()
    )
    return web.json_response({"name": body.name.strip(), "token": token}, status=201)


@ROUTES.delete(f"{PREFIX}/tokens/{{name}}")
@api
async def delete_token(request: web.Request) -> web.Response:
    """Revoke one of the caller's API tokens."""
    principal = await _who(request)
    assert principal.user_id is not None
    name = inputs.path_text(request.match_info["name"], "name", "token", inputs.MAX_TOKEN_NAME)
    done = await people.revoke_api_token(
        _db(request), principal.user_id, name, request.app[CLOCK]()
    )
    if not done:
        raise NotFound("no such token")
    return web.Response(status=204)

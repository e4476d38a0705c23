"""A fake OpenID Connect provider: a real HTTP server on loopback (stdlib http.server in a thread).

    with FakeOidcProvider(redirect_uris=["http://127.0.0.1:8000/admin/sso/callback/"]) as provider:
        provider.issuer                        # http://127.0.0.1:PORT (discovery at /.well-known/openid-configuration)
        provider.user = OidcUser(sub="u-1", email="ada@example.com", groups=["llmproxy:superuser"])
        provider.environ()                     # the LLMPROXY_OIDC_* variables that point a gateway at it
        provider.authorizations, provider.token_requests, provider.reset()

It approves every authorization request for `provider.user` at once (no login page: the user "is logged in" at the
provider), and refuses what a real provider refuses, so a client that gets a step wrong fails its login:

- Discovery (OpenID Connect Discovery 1.0, 3 and 4): GET /.well-known/openid-configuration names the issuer (exactly
  the URL the client was configured with), the endpoints below, `code` as the only response type, RS256, S256 as the
  only PKCE method.
- JWKS (RFC 7517): GET /jwks holds the public half of an RSA key made at start, with its `kid`.
- Authorization (OIDC Core 1.0, 3.1.2; RFC 6749, 4.1.1; RFC 7636, 4.3): GET /authorize needs a known `client_id`
  and a `redirect_uri` registered for it, exactly; otherwise a 400 page and no redirect (RFC 6749, 4.1.2.1: never
  redirect to an unverified URI). With a good redirect URI, other mistakes come back as `error=` on it:
  `response_type` other than code (unsupported_response_type), no `openid` scope, no `state` or `nonce` (this fake
  requires both; the client always sends them), no `code_challenge` or a method other than S256 (invalid_request,
  RFC 7636, 4.4.1), and no configured user (access_denied). Else a redirect with a one-time `code` and the `state`.
- Token (OIDC Core 1.0, 3.1.3; RFC 6749, 4.1.3 and 5.2; RFC 7636, 4.5 and 4.6): POST /token authenticates the client
  (client_secret_basic or client_secret_post, RFC 6749, 2.3.1; else 401 invalid_client), needs grant_type
  authorization_code, a code issued to this client, not used before and not expired (else invalid_grant; a second
  use also revokes the tokens of the first, RFC 6749, 4.1.2), the same `redirect_uri` as the authorization request
  and a `code_verifier` of 43-128 unreserved characters whose BASE64URL(SHA256()) equals the challenge (else
  invalid_grant). It answers with `Cache-Control: no-store` an access token and an RS256 ID token (header `kid`)
  with iss, sub, aud (the client id), exp, iat, auth_time, nonce, email, preferred_username, name and the groups
  claim; `id_token_claims` overrides or adds claims (e.g. a wrong `aud`) to test the client's checks.
- Userinfo (OIDC Core 1.0, 5.3; RFC 6750, 3.1): GET /userinfo with `Authorization: Bearer <access token>` answers
  the user's claims; a missing, unknown or revoked token is a 401 with `WWW-Authenticate: Bearer error=...`.
"""

import base64
import hashlib
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

CLIENT_ID = "llmproxy-admin"
CLIENT_SECRET = "fake-oidc-client-secret-0123456789"
CODE_LIFETIME_SECONDS = 600
TOKEN_LIFETIME_SECONDS = 3600
VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")  # RFC 7636, 4.1


@dataclass
class OidcUser:
    sub: str
    email: str = ""
    groups: list[str] = field(default_factory=list)
    preferred_username: str = ""
    name: str = ""

    def claims(self, groups_claim: str) -> dict[str, Any]:
        claims = {"sub": self.sub, "email": self.email, "email_verified": True, groups_claim: list(self.groups)}
        if self.preferred_username:
            claims["preferred_username"] = self.preferred_username
        if self.name:
            claims["name"] = self.name
        return claims


@dataclass
class Grant:
    """An authorization code and what the token request must match."""

    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str
    user: OidcUser
    issued_at: float
    used: bool = False
    access_token: str | None = None


class OidcError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def s256(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


class FakeOidcProvider:
    def __init__(self, *, redirect_uris: list[str] | None = None, client_id: str = CLIENT_ID,
                 client_secret: str = CLIENT_SECRET, groups_claim: str = "groups",
                 host: str = "127.0.0.1") -> None:  # fmt: skip
        self.host, self.port = host, 0
        self.client_id, self.client_secret, self.groups_claim = client_id, client_secret, groups_claim
        self.redirect_uris = list(redirect_uris or [])
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(8)
        self.user: OidcUser | None = None
        self.id_token_claims: dict[str, Any] = {}
        self.authorizations: list[dict[str, str]] = []  # the query of every GET /authorize
        self.token_requests: list[dict[str, str]] = []  # the form of every POST /token
        self.errors: list[str] = []  # every refusal's description, for a test's failure message
        self._grants: dict[str, Grant] = {}
        self._access_tokens: dict[str, OidcUser] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def issuer(self) -> str:
        if not self.port:
            raise RuntimeError("the fake OIDC provider has no port until it is started")
        return f"http://{self.host}:{self.port}"

    def environ(self, **overrides: str) -> dict[str, str]:
        """The environment that points a gateway at this provider (README: Single sign-on)."""
        return {"LLMPROXY_OIDC_ISSUER": self.issuer, "LLMPROXY_OIDC_CLIENT_ID": self.client_id,
                "LLMPROXY_OIDC_CLIENT_SECRET": self.client_secret, "LLMPROXY_OIDC_PROVIDER_NAME": "Fake ID",
                "LLMPROXY_OIDC_GROUPS_CLAIM": self.groups_claim, **overrides}  # fmt: skip

    def reset(self) -> None:
        with self._lock:
            self.user = None
            self.id_token_claims = {}
            self.authorizations.clear()
            self.token_requests.clear()
            self.errors.clear()
            self._grants.clear()
            self._access_tokens.clear()

    def start(self) -> "FakeOidcProvider":
        provider = self

        class Handler(OidcRequestHandler):
            oidc = provider

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-oidc", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> "FakeOidcProvider":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # The endpoints' rules: plain functions of the request, raising OidcError.

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["openid", "email", "profile", "groups"],
            "claims_supported": ["sub", "email", "preferred_username", "name", self.groups_claim],
        }

    def jwks(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()
        size = (numbers.n.bit_length() + 7) // 8
        key = {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
               "n": b64url(numbers.n.to_bytes(size, "big")), "e": b64url(numbers.e.to_bytes(3, "big"))}  # fmt: skip
        return {"keys": [key]}

    def authorize(self, query: dict[str, str]) -> str:
        """The URL to redirect the browser to (the client's, with a code or an error)."""
        with self._lock:
            self.authorizations.append(dict(query))
        if query.get("client_id") != self.client_id:
            raise OidcError(400, "invalid_request", "unknown client_id")
        redirect_uri = query.get("redirect_uri", "")
        if redirect_uri not in self.redirect_uris:
            raise OidcError(400, "invalid_request", f"redirect_uri {redirect_uri!r} is not registered")
        state = query.get("state")

        def refuse(error: str, description: str) -> str:
            self.errors.append(description)
            params = {"error": error, "error_description": description, **({"state": state} if state else {})}
            return f"{redirect_uri}?{urlencode(params)}"

        if query.get("response_type") != "code":
            return refuse("unsupported_response_type", "only the authorization code flow is supported")
        if "openid" not in query.get("scope", "").split():
            return refuse("invalid_scope", "the openid scope is required")
        if not state or not query.get("nonce"):
            return refuse("invalid_request", "state and nonce are required")
        if not query.get("code_challenge"):
            return refuse("invalid_request", "code challenge required")
        if query.get("code_challenge_method") != "S256":
            return refuse("invalid_request", "transform algorithm not supported")
        if self.user is None:
            return refuse("access_denied", "no user is logged in at the provider")
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._grants[code] = Grant(client_id=self.client_id, redirect_uri=redirect_uri,
                                       challenge=query["code_challenge"], nonce=query["nonce"], user=self.user,
                                       issued_at=time.time())  # fmt: skip
        return f"{redirect_uri}?{urlencode({'code': code, 'state': state})}"

    def token(self, form: dict[str, str], authorization: str | None) -> dict[str, Any]:
        with self._lock:
            self.token_requests.append(dict(form))
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.startswith("Basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            client_id, _, client_secret = decoded.partition(":")
        if client_id != self.client_id or client_secret != self.client_secret:
            raise OidcError(401, "invalid_client", "client authentication failed")
        if form.get("grant_type") != "authorization_code":
            raise OidcError(400, "unsupported_grant_type", "only authorization_code is supported")
        with self._lock:
            grant = self._grants.get(form.get("code", ""))
            if grant is None or grant.client_id != client_id:
                raise OidcError(400, "invalid_grant", "unknown authorization code")
            if grant.used:
                if grant.access_token:
                    self._access_tokens.pop(grant.access_token, None)  # RFC 6749, 4.1.2: revoke what it gave
                raise OidcError(400, "invalid_grant", "authorization code already used")
            grant.used = True
        if time.time() - grant.issued_at > CODE_LIFETIME_SECONDS:
            raise OidcError(400, "invalid_grant", "authorization code expired")
        if form.get("redirect_uri") != grant.redirect_uri:
            raise OidcError(400, "invalid_grant", "redirect_uri differs from the authorization request's")
        verifier = form.get("code_verifier", "")
        if not VERIFIER.match(verifier) or s256(verifier) != grant.challenge:
            raise OidcError(400, "invalid_grant", "PKCE verification failed")
        access_token = secrets.token_urlsafe(32)
        with self._lock:
            grant.access_token = access_token
            self._access_tokens[access_token] = grant.user
        return {"access_token": access_token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME_SECONDS,
                "id_token": self.id_token(grant)}  # fmt: skip

    def id_token(self, grant: Grant) -> str:
        now = int(time.time())
        claims = {**grant.user.claims(self.groups_claim), "iss": self.issuer, "aud": self.client_id,
                  "iat": now, "exp": now + TOKEN_LIFETIME_SECONDS, "auth_time": now, "nonce": grant.nonce,
                  **self.id_token_claims}  # fmt: skip
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})

    def userinfo(self, authorization: str | None) -> dict[str, Any]:
        if not authorization or not authorization.startswith("Bearer "):
            raise OidcError(401, "invalid_request", "a bearer token is required")
        with self._lock:
            user = self._access_tokens.get(authorization[7:])
        if user is None:
            raise OidcError(401, "invalid_token", "the access token is unknown or revoked")
        return user.claims(self.groups_claim)


class OidcRequestHandler(BaseHTTPRequestHandler):
    oidc: FakeOidcProvider
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet, like the other fakes
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {name: values[0] for name, values in parse_qs(url.query).items()}
        try:
            if url.path == "/.well-known/openid-configuration":
                self.send_json(200, self.oidc.discovery())
            elif url.path == "/jwks":
                self.send_json(200, self.oidc.jwks())
            elif url.path == "/authorize":
                location = self.oidc.authorize(query)
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif url.path == "/userinfo":
                self.send_json(200, self.oidc.userinfo(self.headers.get("Authorization")))
            else:
                self.send_json(404, {"error": "not_found"})
        except OidcError as error:
            self.send_error_json(error)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        form = {name: values[0] for name, values in parse_qs(body).items()}
        try:
            if urlsplit(self.path).path != "/token":
                self.send_json(404, {"error": "not_found"})
                return
            if not (self.headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
                raise OidcError(400, "invalid_request", "the token request must be form-encoded")
            self.send_json(200, self.oidc.token(form, self.headers.get("Authorization")))
        except OidcError as error:
            self.send_error_json(error)

    def send_error_json(self, error: OidcError) -> None:
        self.oidc.errors.append(error.description)
        headers = {}
        if self.path.startswith("/userinfo"):
            headers["WWW-Authenticate"] = f'Bearer error="{error.error}"'
        elif error.error == "invalid_client":
            headers["WWW-Authenticate"] = 'Basic realm="fake-oidc"'
        self.send_json(error.status, {"error": error.error, "error_description": error.description}, headers)

    def send_json(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

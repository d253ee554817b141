"""A relying party of Akamon in Python: Flask 2.2 with authlib 1.2 (Debian 12's python3-flask and
python3-authlib), as docs/relying-parties/authlib.md describes it. test/e2e/rp-authlib.test.ts runs
it; an operator may start from it.

Configuration comes from the environment:
  AKAMON_ISSUER   the issuer, exactly as discovery states it (https://id.example.ac.jp)
  CLIENT_ID, CLIENT_SECRET   what `akamon client create` printed
  APP_URL         where this app is reached (https://lab.example.ac.jp); its port is the one it listens on
  SECRET_KEY      signs Flask's session cookie

Routes: /login starts a sign-in, /callback finishes it, / answers what the app knows of the person
(JSON), POST /refresh uses the refresh token, /logout signs out here and at Akamon,
POST /backchannel-logout receives Akamon's logout tokens.
"""

import os
import secrets
from urllib.parse import urlencode, urlsplit

from authlib.common.errors import AuthlibBaseError
from authlib.jose import JsonWebKey, JsonWebToken
from authlib.jose.errors import JoseError
from flask import Flask, abort, jsonify, redirect, request, session
from authlib.integrations.flask_client import OAuth

ISSUER = os.environ["AKAMON_ISSUER"]
CLIENT_ID = os.environ["CLIENT_ID"]
APP_URL = os.environ["APP_URL"].rstrip("/")
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"

app = Flask(__name__)
app.secret_key = os.environ["SECRET_KEY"]
# Akamon's own cookies share the host name in a test on 127.0.0.1: a name of its own avoids a clash.
app.config["SESSION_COOKIE_NAME"] = "lab_session"

oauth = OAuth(app)
akamon = oauth.register(
    "akamon",
    client_id=CLIENT_ID,
    client_secret=os.environ["CLIENT_SECRET"],
    server_metadata_url=f"{ISSUER}/.well-known/openid-configuration",
    # Akamon answers response_type=code only and requires PKCE S256 from every client; authlib
    # adds the code_verifier when a code_challenge_method is set, and the nonce for scope openid.
    client_kwargs={"scope": "openid profile email", "code_challenge_method": "S256", "token_endpoint_auth_method": "client_secret_basic"},
)

# Sessions (Akamon's `sid`) that Akamon said have ended. A real deployment keeps this where every
# worker sees it (the database, Redis), or keeps its sessions server-side and deletes them.
ended_sessions: set[str] = set()


@app.before_request
def forget_ended_session():
    if session.get("sid") in ended_sessions:
        session.clear()


@app.get("/")
def home():
    if "userinfo" not in session:
        return jsonify(signed_in=False)
    return jsonify(signed_in=True, userinfo=session["userinfo"], id_token_claims=session["id_token_claims"])


@app.get("/login")
def login():
    return akamon.authorize_redirect(f"{APP_URL}/callback")


@app.get("/callback")
def callback():
    try:
        # Checks state, redeems the code with the code_verifier, validates the ID token (signature
        # against Akamon's JWKS, iss, aud, nonce, exp) and returns its claims in token["userinfo"].
        token = akamon.authorize_access_token()
    except AuthlibBaseError as error:
        # access_denied (the person left, or a rule of this system refused the account), or a
        # broken state: tell the person instead of showing a stack trace.
        return jsonify(error=error.error, error_description=error.description), 400
    remember(token, token["userinfo"])
    return redirect(f"{APP_URL}/")


def remember(token, id_token_claims):
    # Userinfo: the claims as the account is now (the ID token's are as of the sign-in).
    session["userinfo"] = dict(akamon.userinfo(token=token))
    session["id_token_claims"] = dict(id_token_claims)
    session["sid"] = id_token_claims.get("sid")
    # A refresh may come without a new ID token: the first one still names the session.
    session["id_token"] = token.get("id_token", session.get("id_token"))
    session["access_token"] = token["access_token"]
    session["refresh_token"] = token.get("refresh_token")


@app.post("/refresh")
def refresh():
    if "refresh_token" not in session:
        abort(401)
    try:
        token = akamon.fetch_access_token(grant_type="refresh_token", refresh_token=session["refresh_token"])
    except AuthlibBaseError as error:
        # invalid_grant: the Akamon session ended (sign-out, suspension, idle), so sign in again.
        session.clear()
        return jsonify(error=error.error, error_description=error.description), 401
    previous = session["access_token"]
    # Refresh tokens rotate: keep the new one, the old one is spent.
    remember(token, session["id_token_claims"])
    return jsonify(refreshed=token["access_token"] != previous, userinfo=session["userinfo"])


@app.get("/logout")
def logout():
    # RP-initiated logout: end the local session, then ask Akamon to end its own. Akamon asks the
    # person to confirm, then returns to the registered post-logout URI with the state.
    id_token = session.get("id_token")
    session.clear()
    state = secrets.token_urlsafe(16)
    session["logout_state"] = state
    params = {"client_id": CLIENT_ID, "post_logout_redirect_uri": f"{APP_URL}/signed-out", "state": state}
    if id_token:
        params["id_token_hint"] = id_token
    return redirect(f"{akamon.load_server_metadata()['end_session_endpoint']}?{urlencode(params)}")


@app.get("/signed-out")
def signed_out():
    expected = session.pop("logout_state", None)
    return jsonify(signed_out=expected is not None and secrets.compare_digest(expected, request.args.get("state", "")))


@app.post("/backchannel-logout")
def backchannel_logout():
    # OpenID Connect Back-Channel Logout 1.0, section 2.6: a signed logout token for this client
    # from Akamon, with the logout event, a sid, and no nonce.
    metadata = akamon.load_server_metadata()

    def key_for(header, _payload):
        keys = JsonWebKey.import_key_set(akamon.fetch_jwk_set())
        try:
            return keys.find_by_kid(header.get("kid"))
        except ValueError:
            # Akamon rotated its keys since they were fetched.
            return JsonWebKey.import_key_set(akamon.fetch_jwk_set(force=True)).find_by_kid(header.get("kid"))

    try:
        claims = JsonWebToken(metadata["id_token_signing_alg_values_supported"]).decode(
            request.form.get("logout_token", ""),
            key_for,
            claims_options={"iss": {"essential": True, "value": ISSUER}, "aud": {"essential": True, "value": CLIENT_ID}, "iat": {"essential": True}},
        )
        claims.validate(leeway=60)
    except (JoseError, ValueError):
        return jsonify(error="invalid_request", error_description="the logout token is not valid"), 400
    if BACKCHANNEL_EVENT not in claims.get("events", {}) or "nonce" in claims or not claims.get("sid"):
        return jsonify(error="invalid_request", error_description="not a logout token with a sid"), 400
    ended_sessions.add(claims["sid"])
    return "", 200, {"Cache-Control": "no-store"}


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=urlsplit(APP_URL).port, threaded=True)

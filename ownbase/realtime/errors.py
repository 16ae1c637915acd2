"""Every message the realtime service sends about a failure, in Supabase Realtime's wording.

Join failures are ``phx_reply`` errors ``{"reason": "<Code>: <text>"}``; channel shutdowns are
``system`` messages followed by ``phx_close``; HTTP errors are JSON bodies. Clients and apps compare
these strings, so they are kept in one place.
"""

from __future__ import annotations

# --- websocket handshake (HTTP JSON {"error": ...}) -------------------------------------------
API_KEY_MISSING = "API key is missing"
TOKEN_EXPIRED = "Token has expired"
JWT_FIELDS_REQUIRED = "Fields `role` and `exp` are required in JWT"
JWT_INVALID = "The token provided is not a valid JWT"
JWT_SIGNATURE = "Failed to validate JWT signature"

# --- join replies ("<Code>: <text>") ---------------------------------------------------------
TOPIC_REQUIRED = "TopicNameRequired: You must provide a topic name"
TOO_MANY_CHANNELS = "ChannelRateLimitReached: Too many channels"
TOO_MANY_JOINS = "ClientJoinRateLimitReached: Too many joins per second"
RESTARTING = "RealtimeRestarting: Realtime is restarting, please standby"
UNKNOWN = "Unknown Error on Channel"


def join_unauthorized(topic: str) -> str:
    return f"Unauthorized: You do not have permissions to read from this Channel topic: {topic}"


def join_token_error(message: str) -> str:
    if message.startswith("Token has expired") or message.startswith("Fields"):
        return f"InvalidJWTToken: {message}"
    if message == JWT_SIGNATURE:
        return f"JwtSignatureError: {message}"
    return f"MalformedJWT: {message}"


def token_expired_ago(seconds: int) -> str:
    return f"Token has expired {max(0, seconds)} seconds ago"


# --- channel pushes / system messages ------------------------------------------------------
UNMATCHED_TOPIC = "unmatched topic"
PRESENCE_NOT_MAP = "Presence track payload must be a map"
PAYLOAD_TOO_LARGE = "Payload size exceeds tenant limit"
TRACK_TOO_LARGE = "Track message size exceeded"
SUBSCRIBED_PG = "Subscribed to PostgreSQL"
SERVER_DISCONNECT = "Server requested disconnect"


def lost_permission(topic: str) -> str:
    return f"You no longer have permission to read from this Channel topic: {topic}"


def pg_unable(params: str) -> str:
    return (
        "Unable to subscribe to changes with given parameters. Please check Realtime is enabled "
        f"for the given connect parameters: [{params}]"
    )


def pg_filter_error(reason: str) -> str:
    return f"Error parsing `filter` params: {reason}"


# --- HTTP broadcast ----------------------------------------------------------------------
HTTP_UNAUTHORIZED = {"message": "Unauthorized"}
HTTP_RATE_LIMITED = {"message": "You have exceeded your rate limit"}

# --- websocket close codes ------------------------------------------------------------------
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001  # server shutting down
CLOSE_POLICY = 1008  # message too big / protocol abuse
CLOSE_TRY_AGAIN = 1013  # slow consumer: outbound queue overflow

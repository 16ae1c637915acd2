"""WebAuthn ceremonies for passkeys, on py_webauthn: the relying party from settings, option
objects in the JSON shape supabase-js deserialises, and verification of the browser's answers.
No SQL here; passkeys.py stores what these functions return."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import webauthn
from webauthn.helpers import (options_to_json, parse_authentication_credential_json,
                              parse_registration_credential_json)
from webauthn.helpers.structs import (AttestationConveyancePreference, AuthenticationCredential,
                                      AuthenticatorSelectionCriteria, PublicKeyCredentialDescriptor,
                                      RegistrationCredential, ResidentKeyRequirement,
                                      UserVerificationRequirement)

from ownbase.settings import Settings

# Friendly names of well-known passkey providers by AAGUID; anything else is "Passkey".
KNOWN_AAGUIDS = {
    "fbfc3007-154e-4ecc-8c0b-6e020557d7bd": "iCloud Keychain",
    "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4": "Google Password Manager",
    "bada5566-a7aa-401f-bd96-45619a55120d": "1Password",
    "d548826e-79b4-db40-a3d8-11116f7e8349": "Bitwarden",
}


class CeremonyError(Exception):
    """``parse`` is true when the browser's answer could not even be read."""

    def __init__(self, parse: bool) -> None:
        super().__init__("invalid credential response" if parse else "credential verification failed")
        self.parse = parse


@dataclass(frozen=True)
class RelyingParty:
    id: str
    name: str
    origins: list[str]


def relying_party(s: Settings) -> RelyingParty:
    site = urlsplit(s.site_url)
    rp_id = s.auth_webauthn_rp_id or site.hostname or "localhost"
    origins = [o.strip().rstrip("/") for o in s.auth_webauthn_rp_origins.split(",") if o.strip()]
    if not origins:
        origins = [f"{site.scheme}://{site.netloc}"]
    return RelyingParty(rp_id, s.auth_webauthn_rp_display_name or rp_id, origins)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def registration_options(rp: RelyingParty, *, user_handle: bytes, name: str, display_name: str,
                         exclude: list[bytes], timeout_ms: int) -> tuple[dict[str, Any], bytes]:
    """Options for navigator.credentials.create(): attestation none, a discoverable (resident)
    credential required, user verification preferred. Returns (options JSON, challenge)."""
    options = webauthn.generate_registration_options(
        rp_id=rp.id, rp_name=rp.name, user_id=user_handle, user_name=name, user_display_name=display_name,
        timeout=timeout_ms, attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED, require_resident_key=True,
            user_verification=UserVerificationRequirement.PREFERRED),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=c) for c in exclude])
    return json.loads(options_to_json(options)), options.challenge


def authentication_options(rp: RelyingParty, *, timeout_ms: int) -> tuple[dict[str, Any], bytes]:
    """Options for navigator.credentials.get() with no allowCredentials: the authenticator offers
    its discoverable credentials for this RP."""
    options = webauthn.generate_authentication_options(
        rp_id=rp.id, timeout=timeout_ms, allow_credentials=[],
        user_verification=UserVerificationRequirement.PREFERRED)
    return json.loads(options_to_json(options)), options.challenge


def parse_registration(credential: dict[str, Any]) -> RegistrationCredential:
    try:
        return parse_registration_credential_json(credential)
    except Exception:  # noqa: BLE001 - any malformed field (base64, enum, type) is the client's fault
        raise CeremonyError(parse=True) from None


def parse_assertion(credential: dict[str, Any]) -> AuthenticationCredential:
    try:
        return parse_authentication_credential_json(credential)
    except Exception:  # noqa: BLE001
        raise CeremonyError(parse=True) from None


@dataclass(frozen=True)
class NewCredential:
    credential_id: bytes
    public_key: bytes
    sign_count: int
    aaguid: str
    attestation_type: str
    backup_eligible: bool
    backed_up: bool
    transports: list[str]


def verify_registration(rp: RelyingParty, credential: RegistrationCredential, challenge: bytes) -> NewCredential:
    try:
        result = webauthn.verify_registration_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp.id,
            expected_origin=rp.origins, require_user_verification=False)
    except Exception:  # noqa: BLE001 - the library raises many types; all mean "not a valid attestation"
        raise CeremonyError(parse=False) from None
    transports = [str(getattr(t, "value", t)) for t in (credential.response.transports or [])]
    return NewCredential(result.credential_id, result.credential_public_key, result.sign_count, result.aaguid,
                         str(getattr(result.fmt, "value", result.fmt)),
                         str(getattr(result.credential_device_type, "value", "")) == "multi_device",
                         result.credential_backed_up, transports)


def verify_assertion(rp: RelyingParty, credential: AuthenticationCredential, challenge: bytes, *,
                     public_key: bytes, sign_count: int) -> tuple[int, bool]:
    """(new sign count, backed up) of a valid assertion; a replayed or cloned counter fails."""
    try:
        result = webauthn.verify_authentication_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp.id,
            expected_origin=rp.origins, credential_public_key=public_key,
            credential_current_sign_count=sign_count, require_user_verification=False)
    except Exception:  # noqa: BLE001
        raise CeremonyError(parse=False) from None
    return result.new_sign_count, result.credential_backed_up

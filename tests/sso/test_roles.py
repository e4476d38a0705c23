"""The claims -> roles rule (sso/roles.py), as a pure function."""

import pytest

from sso.config import sso_settings
from sso.roles import RoleMapping, Roles, roles_from_claims, team_role

MAPPING = RoleMapping()


def roles(*groups: str, mapping: RoleMapping = MAPPING) -> Roles:
    return roles_from_claims({"sub": "u-1", mapping.groups_claim: list(groups)}, mapping)


def test_no_groups_grant_nothing():
    assert roles() == Roles(is_staff=False, is_superuser=False, teams={})
    assert not roles().grants_admin
    assert not roles_from_claims({"sub": "u-1"}, MAPPING).grants_admin  # no claim at all
    assert not roles("engineering", "llmproxy:other").grants_admin


def test_staff_group_makes_staff_only():
    granted = roles("engineering", "llmproxy:staff")
    assert (granted.is_staff, granted.is_superuser, dict(granted.teams)) == (True, False, {})
    assert granted.grants_admin


def test_superuser_group_makes_superuser_and_staff():
    granted = roles("llmproxy:superuser")
    assert granted.is_superuser and granted.is_staff


def test_team_groups_make_memberships_and_staff():
    granted = roles("llmproxy:team:research:admin", "llmproxy:team:ops:member")
    assert dict(granted.teams) == {"research": "admin", "ops": "member"}
    assert granted.is_staff and not granted.is_superuser


def test_admin_wins_over_member_in_either_order():
    assert dict(roles("llmproxy:team:x:member", "llmproxy:team:x:admin").teams) == {"x": "admin"}
    assert dict(roles("llmproxy:team:x:admin", "llmproxy:team:x:member").teams) == {"x": "admin"}


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        ("llmproxy:team:research:admin", ("research", "admin")),
        ("llmproxy:team:a:b:member", ("a:b", "member")),  # a team name may hold colons
        ("llmproxy:team:research:owner", None),  # unknown role
        ("llmproxy:team::admin", None),  # no team name
        ("llmproxy:team:research", None),
        ("other:team:research:admin", None),
    ],
)
def test_team_group_names(group, expected):
    assert team_role(group, "llmproxy:team:") == expected


def test_a_single_string_is_one_group_and_other_types_are_ignored():
    assert roles_from_claims({"groups": "llmproxy:staff"}, MAPPING).is_staff
    assert not roles_from_claims({"groups": {"llmproxy:staff": True}}, MAPPING).grants_admin
    assert not roles_from_claims({"groups": [1, None, ["llmproxy:staff"]]}, MAPPING).grants_admin


def test_mapping_from_the_environment():
    settings = sso_settings({"LLMPROXY_OIDC_ISSUER": "https://id.example.com/", "LLMPROXY_OIDC_CLIENT_ID": "c",
                             "LLMPROXY_OIDC_GROUPS_CLAIM": "roles", "LLMPROXY_OIDC_STAFF_GROUPS": "ops, devs",
                             "LLMPROXY_OIDC_SUPERUSER_GROUPS": "root",
                             "LLMPROXY_OIDC_TEAM_GROUP_PREFIX": "team-"})  # fmt: skip
    mapping = RoleMapping(groups_claim=settings["LLMPROXY_OIDC_GROUPS_CLAIM"],
                          staff_groups=frozenset(settings["LLMPROXY_OIDC_STAFF_GROUPS"]),
                          superuser_groups=frozenset(settings["LLMPROXY_OIDC_SUPERUSER_GROUPS"]),
                          team_prefix=settings["LLMPROXY_OIDC_TEAM_GROUP_PREFIX"])  # fmt: skip
    assert settings["LLMPROXY_OIDC_ISSUER"] == "https://id.example.com"
    assert roles("devs", mapping=mapping).is_staff
    assert roles("root", mapping=mapping).is_superuser
    assert dict(roles("team-blue:member", mapping=mapping).teams) == {"blue": "member"}
    assert not roles("llmproxy:superuser", mapping=mapping).grants_admin  # the defaults no longer apply


def test_settings_without_an_issuer_are_todays():
    settings = sso_settings({"LLMPROXY_PASSWORD_LOGIN": "0"})  # cannot switch password login off without SSO
    assert settings == {"LLMPROXY_OIDC_ISSUER": "", "LLMPROXY_PASSWORD_LOGIN": True,
                        "AUTHENTICATION_BACKENDS": ["django.contrib.auth.backends.ModelBackend"]}  # fmt: skip


def test_settings_with_password_login_off_drop_the_password_backend():
    on = sso_settings({"LLMPROXY_OIDC_ISSUER": "https://id.example.com", "LLMPROXY_OIDC_CLIENT_ID": "c"})
    off = sso_settings({"LLMPROXY_OIDC_ISSUER": "https://id.example.com", "LLMPROXY_OIDC_CLIENT_ID": "c",
                        "LLMPROXY_PASSWORD_LOGIN": "0"})  # fmt: skip
    assert on["AUTHENTICATION_BACKENDS"] == ["django.contrib.auth.backends.ModelBackend", "sso.backends.OidcBackend"]
    assert off["AUTHENTICATION_BACKENDS"] == ["sso.backends.OidcBackend"]
    assert on["OIDC_USE_PKCE"] and on["OIDC_PKCE_CODE_CHALLENGE_METHOD"] == "S256"
    assert on["OIDC_RP_SCOPES"].split()[0] == "openid"

-- Sign-in through OAuth providers: GitHub (and GitHub Enterprise) and OpenID Connect providers
-- found by discovery. The client secret is needed to call the provider, so it is stored as
-- given, and never shown again (listed masked). The endpoints of an OIDC provider come from its
-- discovery document when it is added.
CREATE TABLE oauth_providers (
    id                BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name              VARCHAR(64) NOT NULL,
    kind              VARCHAR(16) NOT NULL,
    display_name      VARCHAR(64) NOT NULL DEFAULT '',
    client_id         VARCHAR(255) NOT NULL,
    client_secret     VARCHAR(512) NOT NULL,
    issuer            VARCHAR(512) NOT NULL DEFAULT '',
    auth_url          VARCHAR(512) NOT NULL,
    token_url         VARCHAR(512) NOT NULL,
    userinfo_url      VARCHAR(512) NOT NULL DEFAULT '',
    jwks_url          VARCHAR(512) NOT NULL DEFAULT '',
    scopes            VARCHAR(255) NOT NULL DEFAULT '',
    created_at        BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE UNIQUE INDEX oauth_providers_name_idx ON oauth_providers (name);

-- Who an account is at a provider (the table exists since the first migration): the
-- provider's own stable id for the person (`subject`) identifies them, never their email, which
-- can change hands; the address and handle are kept to show on the profile.
ALTER TABLE user_identities ADD COLUMN email VARCHAR(255) NOT NULL DEFAULT '';
ALTER TABLE user_identities ADD COLUMN login VARCHAR(255) NOT NULL DEFAULT '';

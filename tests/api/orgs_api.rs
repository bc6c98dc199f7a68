//! Organisations through `/api`: an organisation's whole life (settings, teams by id, members,
//! team caps, the wallet with an idempotency key, invitations, transfer, deletion refused while
//! the wallet holds money), and team keys made through the API naming their team.

use serde_json::{Value, json};

use crate::helpers::{Api, TestApp, admin_token, db_test};

/// The member named `username` in a team view.
fn team_member<'a>(team: &'a Value, username: &str) -> &'a Value {
    team["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["username"] == username)
        .unwrap_or_else(|| panic!("{username} is not in {team}"))
}

db_test! {
    async fn an_organisation_from_creation_to_deletion(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let api = Api { token: admin_token(&app, "root", "root").await, app: &app };
        for name in ["alice", "bob", "dave"] {
            let (status, user) = api.post("/api/users", json!({"username": name})).await;
            assert_eq!(status, 201, "{user}");
        }

        // Create, show, list.
        let (status, org) = api.post("/api/orgs", json!({
            "name": "Acme", "slug": "acme", "owner": "alice", "timezone": "Europe/Paris",
            "budget_usd": 50, "budget_period": "monthly", "group": "default"
        })).await;
        assert_eq!(status, 201, "{org}");
        assert_eq!(org["owner"], "alice");
        assert_eq!(org["budget"]["quota"], 25_000_000);
        assert_eq!(org["quota"], 0);
        let (status, error) = api.post("/api/orgs", json!({"name": "Again", "slug": "acme", "owner": "bob"})).await;
        assert_eq!((status, error["error"]["field"].as_str()), (409, Some("slug")), "{error}");
        let (status, error) = api.post("/api/orgs", json!({"name": "X", "slug": "ok", "owner": "nobody"})).await;
        assert_eq!((status, error["error"]["field"].as_str()), (400, Some("owner")), "{error}");
        let (status, shown) = api.get("/api/orgs/acme").await;
        assert_eq!((status, shown["timezone"].as_str()), (200, Some("Europe/Paris")));
        let (_, list) = api.get("/api/orgs").await;
        assert_eq!(list["data"][0]["slug"], "acme");
        assert_eq!(api.get("/api/orgs/nope").await.0, 404);

        // Patch: a bad slug is named; a null budget removes it.
        let (status, error) = api.patch("/api/orgs/acme", json!({"slug": "Not A Slug"})).await;
        assert_eq!((status, error["error"]["field"].as_str()), (400, Some("slug")), "{error}");
        let (status, org) = api.patch("/api/orgs/acme", json!({"name": "Acme Ltd", "budget_usd": null})).await;
        assert_eq!(status, 200, "{org}");
        assert_eq!((org["name"].as_str(), org["budget"].is_null()), (Some("Acme Ltd"), true), "{org}");

        // Teams by id.
        let (status, team) = api.post("/api/orgs/acme/teams", json!({
            "name": "research", "budget_usd": "10", "budget_period": "monthly"
        })).await;
        assert_eq!(status, 201, "{team}");
        let id = team["id"].as_i64().unwrap();
        let (status, other) = api.post("/api/orgs/acme/teams", json!({"name": "ops"})).await;
        assert_eq!(status, 201, "{other}");
        let (status, error) = api.post("/api/orgs/acme/teams", json!({"name": "ops"})).await;
        assert_eq!((status, error["error"]["field"].as_str()), (409, Some("name")));
        let (status, teams) = api.get("/api/orgs/acme/teams").await;
        assert_eq!((status, teams["data"].as_array().unwrap().len()), (200, 2));
        let (status, team) = api.patch(&format!("/api/orgs/acme/teams/{id}"), json!({"member_cap_usd": 4})).await;
        assert_eq!((status, team["member_cap_quota"].as_i64()), (200, Some(2_000_000)), "{team}");
        let (status, team) = api.get(&format!("/api/orgs/acme/teams/{id}")).await;
        assert_eq!((status, team["name"].as_str()), (200, Some("research")));
        let (status, error) = api.patch(&format!("/api/orgs/acme/teams/{id}"), json!({"member_cap_usd": 99})).await;
        assert_eq!((status, error["error"]["field"].as_str()), (400, Some("member_cap_usd")), "{error}");
        let other_id = other["id"].as_i64().unwrap();
        assert_eq!(api.delete(&format!("/api/orgs/acme/teams/{other_id}")).await.0, 204);
        assert_eq!(api.get(&format!("/api/orgs/acme/teams/{other_id}")).await.0, 404);
        assert_eq!(api.delete(&format!("/api/orgs/acme/teams/{other_id}")).await.0, 404);

        // Members: added directly (with a team), role changed, removed.
        let (status, bob) = api.post("/api/orgs/acme/members", json!({"username": "bob", "team": id})).await;
        assert_eq!(status, 201, "{bob}");
        assert_eq!((bob["role"].as_str(), bob["teams"].clone()), (Some("member"), json!(["research"])));
        let (status, error) = api.post("/api/orgs/acme/members", json!({"username": "bob"})).await;
        assert_eq!((status, error["error"]["field"].as_str()), (409, Some("username")));
        let (status, error) = api.post("/api/orgs/acme/members", json!({"username": "dave", "team": 9999})).await;
        assert_eq!((status, error["error"]["field"].as_str()), (400, Some("team")), "{error}");
        let (status, dave) = api.post("/api/orgs/acme/members", json!({"username": "dave", "role": "admin"})).await;
        assert_eq!((status, dave["role"].as_str()), (201, Some("admin")), "{dave}");
        let (status, dave) = api.patch("/api/orgs/acme/members/dave", json!({"role": "member"})).await;
        assert_eq!((status, dave["role"].as_str()), (200, Some("member")), "{dave}");
        let (status, error) = api.patch("/api/orgs/acme/members/dave", json!({"role": "owner"})).await;
        assert_eq!((status, error["error"]["field"].as_str()), (400, Some("role")));
        assert_eq!(api.delete("/api/orgs/acme/members/dave").await.0, 204);
        assert_eq!(api.delete("/api/orgs/acme/members/dave").await.0, 404);
        let (_, members) = api.get("/api/orgs/acme/members").await;
        let names: Vec<&str> = members["data"].as_array().unwrap().iter().map(|m| m["username"].as_str().unwrap()).collect();
        assert_eq!(names.len(), 2, "{members}");
        assert!(names.contains(&"alice") && names.contains(&"bob"), "{members}");

        // A team member's own cap, then back to the team's.
        let path = format!("/api/orgs/acme/teams/{id}/members/bob");
        let (status, team) = api.put(&path, json!({"cap_usd": 2, "manager": true})).await;
        assert_eq!(status, 200, "{team}");
        let bob = team_member(&team, "bob");
        assert_eq!((bob["own_cap_quota"].as_i64(), bob["manager"].as_bool()), (Some(1_000_000), Some(true)));
        let (status, team) = api.put(&path, json!({"cap_usd": null})).await;
        assert_eq!(status, 200, "{team}");
        let bob = team_member(&team, "bob");
        assert!(bob["own_cap_quota"].is_null(), "{bob}");
        assert_eq!(bob["manager"], true, "absent fields stay");
        let (status, team) = api.put(&format!("/api/orgs/acme/teams/{id}/members/alice"), json!({})).await;
        assert_eq!(status, 200, "{team}");
        assert_eq!(api.delete(&format!("/api/orgs/acme/teams/{id}/members/alice")).await.0, 204);
        assert_eq!(api.delete(&format!("/api/orgs/acme/teams/{id}/members/alice")).await.0, 404);
        assert_eq!(api.put("/api/orgs/acme/teams/9999/members/bob", json!({})).await.0, 404);

        // The wallet: a key sent twice tops up once.
        let top_up = || {
            api.request(reqwest::Method::POST, "/api/orgs/acme/quota")
                .header("idempotency-key", "invoice-7")
                .json(&json!({"usd": "5", "reason": "invoice 7"}))
                .send()
        };
        let first = top_up().await.unwrap();
        assert_eq!(first.status(), 200);
        assert!(first.headers().get("idempotent-replayed").is_none());
        assert_eq!(first.json::<Value>().await.unwrap()["quota"], 2_500_000);
        let again = top_up().await.unwrap();
        assert_eq!(again.status(), 200);
        assert_eq!(again.headers()["idempotent-replayed"], "true");
        assert_eq!(again.json::<Value>().await.unwrap()["quota"], 2_500_000);
        let (status, error) = api.post("/api/orgs/acme/quota", json!({"usd": "1", "reason": "x", "idempotency_key": "invoice-7"})).await;
        assert_eq!((status, error["error"]["field"].as_str()), (409, Some("idempotency_key")));
        let (status, error) = api.post("/api/orgs/acme/quota", json!({"usd": "1"})).await;
        assert_eq!((status, error["error"]["field"].as_str()), (400, Some("reason")));
        assert_eq!(api.get("/api/orgs/acme").await.1["quota"], 2_500_000);

        // Invitations: by email without SMTP the answer holds the link; resent, revoked.
        let (status, invited) = api.post("/api/orgs/acme/invitations", json!({"email": "carol@example.com", "team": id})).await;
        assert_eq!(status, 201, "{invited}");
        assert_eq!(invited["mailed"], false);
        let link = invited["link"].as_str().unwrap().to_string();
        assert!(link.contains("/invitations/"), "{link}");
        assert_eq!(invited["invitation"]["team_name"], "research");
        let invitation = invited["invitation"]["id"].as_i64().unwrap();
        let (status, error) = api.post("/api/orgs/acme/invitations", json!({"email": "not an address"})).await;
        assert_eq!((status, error["error"]["field"].as_str()), (400, Some("email")));
        let (status, resent) = api.post(&format!("/api/orgs/acme/invitations/{invitation}/resend"), json!({})).await;
        assert_eq!(status, 200, "{resent}");
        assert_ne!(resent["link"].as_str().unwrap(), link, "a new link");
        assert_eq!(api.delete(&format!("/api/orgs/acme/invitations/{invitation}")).await.0, 204);
        assert_eq!(api.delete(&format!("/api/orgs/acme/invitations/{invitation}")).await.0, 409);
        assert_eq!(api.delete("/api/orgs/acme/invitations/9999").await.0, 404);
        let (_, invitations) = api.get("/api/orgs/acme/invitations").await;
        assert_eq!(invitations["data"][0]["state"], "revoked", "{invitations}");

        // Transfer: at once, through the API.
        let (status, transferred) = api.post("/api/orgs/acme/transfer", json!({"username": "bob"})).await;
        assert_eq!(status, 200, "{transferred}");
        assert_eq!((transferred["transfer"].as_str(), transferred["org"]["owner"].as_str()), (Some("done"), Some("bob")));
        let (status, error) = api.post("/api/orgs/acme/transfer", json!({"username": "dave"})).await;
        assert_eq!((status, error["error"]["field"].as_str()), (400, Some("username")));

        // Deletion: refused while the wallet holds money; with force it needs a reason.
        let (status, error) = api.delete("/api/orgs/acme").await;
        assert_eq!(status, 409, "{error}");
        let (status, error) = api.delete("/api/orgs/acme?force=true").await;
        assert_eq!((status, error["error"]["field"].as_str()), (400, Some("reason")), "{error}");
        let (status, _) = api
            .call(reqwest::Method::DELETE, "/api/orgs/acme", Some(json!({"force": true, "reason": "closed by contract"})))
            .await;
        assert_eq!(status, 204);
        assert_eq!(api.get("/api/orgs/acme").await.0, 404);
        assert_eq!(api.delete("/api/orgs/acme?force=true&reason=again").await.0, 404);
    }
}

db_test! {
    /// A key made through the API for a team names its organisation and team wherever the
    /// API shows it; a personal key names none; a team the owner is not in is refused.
    async fn team_keys_through_the_api(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let api = Api { token: admin_token(&app, "root", "root").await, app: &app };
        for name in ["alice", "bob"] {
            assert_eq!(api.post("/api/users", json!({"username": name})).await.0, 201);
        }
        assert_eq!(api.post("/api/orgs", json!({"name": "Acme", "slug": "acme", "owner": "alice"})).await.0, 201);
        let (_, team) = api.post("/api/orgs/acme/teams", json!({"name": "research"})).await;
        let id = team["id"].as_i64().unwrap();
        assert_eq!(api.put(&format!("/api/orgs/acme/teams/{id}/members/alice"), json!({})).await.0, 200);

        let (status, created) = api.post("/api/users/alice/tokens", json!({"name": "lab", "org": "acme", "team": id})).await;
        assert_eq!(status, 201, "{created}");
        // The new key's fields sit beside `key`.
        let token = &created;
        assert_eq!((token["org"].as_str(), token["team"].as_i64(), token["team_name"].as_str()), (Some("acme"), Some(id), Some("research")), "{created}");
        let key_id = token["id"].as_i64().unwrap();
        let (_, shown) = api.get(&format!("/api/tokens/{key_id}")).await;
        assert_eq!((shown["org"].as_str(), shown["team_name"].as_str()), (Some("acme"), Some("research")));
        let (_, changed) = api.patch(&format!("/api/tokens/{key_id}"), json!({"name": "lab 2"})).await;
        assert_eq!(changed["team"], id);

        let (_, personal) = api.post("/api/users/alice/tokens", json!({"name": "own"})).await;
        assert!(personal["org"].is_null() && personal["team"].is_null(), "{personal}");
        let (_, listed) = api.get("/api/users/alice/tokens").await;
        let lab = listed["data"].as_array().unwrap().iter().find(|t| t["id"] == key_id).unwrap();
        assert_eq!((lab["org"].as_str(), lab["team"].as_i64(), lab["team_name"].as_str()), (Some("acme"), Some(id), Some("research")));

        let (status, error) = api.post("/api/users/bob/tokens", json!({"name": "x", "org": "acme", "team": id})).await;
        assert_eq!((status, error["error"]["field"].as_str()), (400, Some("team")), "{error}");
    }
}

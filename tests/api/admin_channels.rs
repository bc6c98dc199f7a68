//! The console's channels pages and the `/api` routes beside them, over real HTTP: who sees
//! them, a channel's form (new, preset, copy, edit, delete), tests and model lists against a
//! fake upstream, bulk changes, copying settings with its preview, export and import; secrets
//! never in any answer, and every change in the audit log with what it was and became.

use serde_json::{Value, json};
use tollgate::records::audit::{AuditFilter, AuditRow};
use tollgate::service::channels::ChannelInput;
use tollgate::service::db::channels::ChannelRow;

use crate::helpers::{Api, Browser, CLI, FakeUpstream, TestApp, admin_token, db_test};

const PASSWORD: &str = "correct horse battery";
/// The upstream key every channel here is made with: it must never be shown.
const SECRET: &str = "sk-upstream-very-secret-1234";
const HEADER_SECRET: &str = "header-value-secret";

async fn audit(app: &TestApp, action: &str) -> Vec<AuditRow> {
    tollgate::service::audit::list(
        app.ctx(),
        &CLI,
        &AuditFilter {
            action: Some(action.into()),
            limit: 100,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

async fn channel(app: &TestApp, name: &str) -> ChannelRow {
    tollgate::service::channels::get(app.ctx(), &CLI, name)
        .await
        .unwrap()
}

async fn add(app: &TestApp, name: &str, upstream: &FakeUpstream, models: &str) -> i64 {
    app.add_channel_with(ChannelInput {
        name: Some(name.into()),
        base_url: Some(upstream.base_url()),
        models: Some(models.into()),
        keys: Some(vec![SECRET.into()]),
        extra_headers: Some([("X-Org".to_string(), HEADER_SECRET.to_string())].into()),
        ..Default::default()
    })
    .await
}

fn no_secrets(what: &str, body: &str) {
    assert!(!body.contains(SECRET), "{what} shows the key: {body}");
    assert!(
        !body.contains(HEADER_SECRET),
        "{what} shows a header value: {body}"
    );
}

db_test! {
    /// Every channels page: a person who is not an administrator gets the not-found page with
    /// nothing of the console (forms too); admin and root see the channels, masked.
    async fn only_administrators_see_the_channel_pages(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let upstream = FakeUpstream::chat().await;
        let id = add(&app, "primary-upstream", &upstream, "gpt-4o-mini").await;
        app.create_account("alice", "user", PASSWORD).await;
        app.create_account("ada", "admin", PASSWORD).await;
        app.create_account("ruth", "root", PASSWORD).await;
        let pages = [
            "/admin/channels".to_string(),
            "/admin/channels/new".to_string(),
            "/admin/channels/new?preset=deepseek".to_string(),
            format!("/admin/channels/new?from={id}"),
            format!("/admin/channels/{id}"),
            "/admin/channels/sync".to_string(),
            "/admin/channels/import".to_string(),
            "/admin/channels/export".to_string(),
        ];

        let alice = Browser::new(&app);
        alice.sign_in("alice", PASSWORD).await;
        for path in &pages {
            let refused = alice.get(path).await;
            assert_eq!(refused.status, 404, "{path}: {}", refused.body);
            assert!(!refused.body.contains("console-nav"), "{path}");
            assert!(!refused.body.contains("primary-upstream"), "{path}: {}", refused.body);
        }
        alice.get("/keys").await;
        let refused = alice.post(&format!("/admin/channels/{id}/delete"), &[]).await;
        assert_eq!(refused.status, 404);
        assert!(tollgate::service::channels::get(app.ctx(), &CLI, "primary-upstream").await.is_ok());

        for name in ["ada", "ruth"] {
            let admin = Browser::new(&app);
            admin.sign_in(name, PASSWORD).await;
            for path in &pages {
                let shown = admin.get(path).await;
                assert_eq!(shown.status, 200, "{name} {path}: {}", shown.body);
                no_secrets(path, &shown.body);
            }
            let list = admin.get("/admin/channels").await;
            assert!(list.contains("href=\"/admin/channels/new\""));
            assert!(list.contains(&format!("href=\"/admin/channels/{id}\"")));
            let edit = admin.get(&format!("/admin/channels/{id}")).await;
            assert!(edit.contains("sk-****1234"), "the key is shown masked: {}", edit.body);
            assert!(edit.contains("X-Org"), "header names are shown");
        }
        let chinese = Browser::new(&app);
        chinese.sign_in("ada", PASSWORD).await;
        let list = chinese.get("/admin/channels?lang=zh-CN").await;
        assert_eq!(list.lang(), Some("zh-CN"));
        assert!(list.contains("新建渠道"), "{}", list.body);
        let preset = Browser::new(&app);
        preset.sign_in("ada", PASSWORD).await;
        let form = preset.get("/admin/channels/new?preset=deepseek").await;
        assert_eq!(form.input("base_url").as_deref(), Some("https://api.deepseek.com/v1"), "{}", form.body);
    }
}

db_test! {
    /// A channel made, refused, edited, copied and deleted through its form: a refused form
    /// comes back 422 with the field marked and what was typed kept; keys are write-only (an
    /// empty field keeps them); pointing a channel or a copy elsewhere needs keys, in the page
    /// as in `/api`; each change is in the audit log with what it was and became.
    async fn a_channel_through_its_form(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let upstream = FakeUpstream::chat().await;
        let elsewhere = FakeUpstream::chat().await;
        app.create_account("ada", "admin", PASSWORD).await;
        let admin = Browser::new(&app);
        admin.sign_in("ada", PASSWORD).await;
        let base = upstream.base_url();

        admin.get("/admin/channels/new").await;
        let refused = admin
            .post("/admin/channels/new", &[
                ("name", "main"), ("type", "openai"), ("base_url", "not a url"),
                ("keys", SECRET), ("models", "gpt-4o-mini\ngpt-4o"), ("weight", "heavy"),
            ])
            .await;
        assert_eq!(refused.status, 422, "{}", refused.body);
        assert!(refused.contains("id=\"errors\""), "the summary leads the form");
        assert!(refused.field_error("weight").is_some(), "{}", refused.body);
        assert_eq!(refused.input("name").as_deref(), Some("main"));
        assert!(refused.contains("gpt-4o-mini\ngpt-4o"), "the models typed are kept");
        no_secrets("a refused form", &refused.body);
        let refused = admin
            .post("/admin/channels/new", &[
                ("name", "main"), ("type", "openai"), ("base_url", "not a url"),
                ("keys", SECRET), ("models", "gpt-4o-mini"),
            ])
            .await;
        assert_eq!(refused.status, 422);
        assert!(refused.field_error("base_url").is_some(), "{}", refused.body);
        assert_eq!(refused.input("base_url").as_deref(), Some("not a url"));

        let made = admin
            .post("/admin/channels/new", &[
                ("name", "main"), ("type", "openai"), ("base_url", &base), ("keys", SECRET),
                ("models", "gpt-4o-mini\ngpt-4o"), ("model_mapping", "gpt-4o=gpt-4o-2024-08-06"),
                ("groups", "default"), ("priority", "3"), ("weight", "5"),
                ("extra_headers", &format!("X-Org: {HEADER_SECRET}")),
            ])
            .await;
        assert_eq!(made.status, 303, "{}", made.body);
        let main = channel(&app, "main").await;
        assert_eq!(made.location, Some(format!("/admin/channels/{}", main.id)));
        assert_eq!(main.secret_keys, vec![SECRET.to_string()]);
        assert_eq!((main.priority, main.weight), (3, 5));
        assert_eq!(main.model_mapping["gpt-4o"], "gpt-4o-2024-08-06");
        let shown = admin.get(&format!("/admin/channels/{}", main.id)).await;
        assert!(shown.contains("Channel main was created."), "{}", shown.body);
        no_secrets("the edit page", &shown.body);

        // Saved with the keys and headers left empty: they are kept.
        let edit_path = format!("/admin/channels/{}", main.id);
        let saved = admin
            .post(&edit_path, &[
                ("name", "main"), ("type", "openai"), ("base_url", &base), ("keys", ""),
                ("clear_keys", "false"), ("models", "gpt-4o-mini"), ("model_mapping", ""),
                ("groups", "default"), ("priority", "7"), ("weight", "5"), ("timeout_secs", "0"),
                ("extra_headers", ""), ("clear_extra_headers", "false"), ("status", "disabled"),
            ])
            .await;
        assert_eq!(saved.status, 303, "{}", saved.body);
        let main = channel(&app, "main").await;
        assert_eq!(main.secret_keys, vec![SECRET.to_string()]);
        assert_eq!(main.extra_headers["X-Org"], HEADER_SECRET);
        assert_eq!(main.priority, 7);
        assert!(main.model_mapping.is_empty());
        assert_eq!(main.status_reason, "disabled by an admin");
        let list = admin.get("/admin/channels").await;
        assert!(list.contains("Disabled by an administrator."), "{}", list.body);

        // Pointed elsewhere without keys: refused, in the page as in /api.
        admin.get(&edit_path).await;
        let moved = admin
            .post(&edit_path, &[
                ("name", "main"), ("type", "openai"), ("base_url", &elsewhere.base_url()),
                ("models", "gpt-4o-mini"), ("groups", "default"), ("priority", "7"),
                ("weight", "5"), ("status", "enabled"),
            ])
            .await;
        assert_eq!(moved.status, 422, "{}", moved.body);
        assert!(moved.field_error("keys").is_some(), "{}", moved.body);
        assert_eq!(moved.input("base_url"), Some(elsewhere.base_url()));
        let api = Api { app: &app, token: admin_token(&app, "apiadmin", "admin").await };
        let (status, body) = api
            .patch(&format!("/api/channels/{}", main.id), json!({"base_url": elsewhere.base_url()}))
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(channel(&app, "main").await.base_url, base);

        // A copy to the same place keeps the keys; a copy elsewhere needs its own.
        let copy_form = admin.get(&format!("/admin/channels/new?from={}", main.id)).await;
        assert_eq!(copy_form.input("name").as_deref(), Some("main-copy"));
        let copied = admin
            .post("/admin/channels/new", &[
                ("from", &main.id.to_string()), ("name", "main-copy"), ("type", "openai"),
                ("base_url", &base), ("models", "gpt-4o-mini"),
            ])
            .await;
        assert_eq!(copied.status, 303, "{}", copied.body);
        let copy = channel(&app, "main-copy").await;
        assert_eq!(copy.secret_keys, vec![SECRET.to_string()]);
        assert_eq!(copy.extra_headers["X-Org"], HEADER_SECRET);
        let refused = admin
            .post("/admin/channels/new", &[
                ("from", &main.id.to_string()), ("name", "stolen"), ("type", "openai"),
                ("base_url", &elsewhere.base_url()), ("models", "gpt-4o-mini"),
            ])
            .await;
        assert_eq!(refused.status, 422, "{}", refused.body);
        assert!(refused.field_error("keys").is_some());
        let (status, body) = api
            .post(&format!("/api/channels/{}/clone", main.id),
                json!({"name": "stolen", "base_url": elsewhere.base_url()}))
            .await;
        assert_eq!(status, 400, "{body}");
        let (status, body) = api
            .post(&format!("/api/channels/{}/clone", main.id), json!({"name": "api-copy"}))
            .await;
        assert_eq!(status, 201, "{body}");
        no_secrets("the API's copy", &body.to_string());

        // The headers removed with their box (sent after its hidden `false`), the keys kept.
        admin.get(&edit_path).await;
        let cleared = admin
            .post(&edit_path, &[
                ("name", "main"), ("type", "openai"), ("base_url", &base), ("keys", ""),
                ("clear_keys", "false"), ("models", "gpt-4o-mini"), ("groups", "default"),
                ("priority", "7"), ("weight", "5"), ("extra_headers", ""),
                ("clear_extra_headers", "false"), ("clear_extra_headers", "true"), ("status", "disabled"),
            ])
            .await;
        assert_eq!(cleared.status, 303, "{}", cleared.body);
        let main_now = channel(&app, "main").await;
        assert!(main_now.extra_headers.is_empty());
        assert_eq!(main_now.secret_keys, vec![SECRET.to_string()]);

        // Deleted after the confirmation.
        let deleted = admin.post(&format!("/admin/channels/{}/delete", copy.id), &[]).await;
        assert_eq!(deleted.status, 303);
        assert!(tollgate::service::channels::get(app.ctx(), &CLI, "main-copy").await.is_err());

        let created = audit(&app, "channel.create").await;
        assert!(created.iter().any(|r| r.target == format!("channel:{}", main.id)
            && r.actor == "ada" && r.before.is_none()
            && r.after.as_ref().unwrap()["keys"] == "changed"));
        let updated = audit(&app, "channel.update").await;
        let update = updated
            .iter()
            .find(|r| r.target == format!("channel:{}", main.id) && r.after.as_ref().unwrap().get("priority").is_some())
            .unwrap();
        assert_eq!(update.before.as_ref().unwrap()["priority"], 3);
        assert_eq!(update.after.as_ref().unwrap()["priority"], 7);
        let removed = audit(&app, "channel.delete").await;
        assert!(removed.iter().any(|r| r.target == format!("channel:{}", copy.id) && r.after.is_none()));
        for row in created.iter().chain(&updated).chain(&removed) {
            no_secrets("the audit log", &format!("{:?} {:?}", row.before, row.after));
        }
    }
}

db_test! {
    /// A channel tested alone (its latency and the upstream's answer shown) and all at once;
    /// the upstream's model list to pick the served models from.
    async fn channels_are_tested_and_their_models_fetched(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let upstream = FakeUpstream::chat().await;
        let id = add(&app, "main", &upstream, "gpt-4o-mini").await;
        let broken = FakeUpstream::chat().await;
        broken.set_default(crate::helpers::Reply::error(401, "Incorrect API key provided"));
        add(&app, "refused", &broken, "gpt-4o-mini").await;
        app.create_account("ada", "admin", PASSWORD).await;
        let admin = Browser::new(&app);
        admin.sign_in("ada", PASSWORD).await;
        admin.get("/admin/channels").await;

        let tested = admin.post(&format!("/admin/channels/{id}/test"), &[]).await;
        assert_eq!(tested.status, 303);
        let shown = admin.get(&format!("/admin/channels/{id}")).await;
        assert!(shown.contains("Channel main answered in "), "{}", shown.body);
        assert_eq!(upstream.request_count(), 1);

        let all = admin.post("/admin/channels/test", &[]).await;
        assert_eq!(all.status, 200, "{}", all.body);
        assert!(all.contains("Incorrect API key provided"), "the upstream's answer: {}", all.body);
        assert!(all.contains(" ms"), "{}", all.body);
        no_secrets("the test results", &all.body);
        assert!(channel(&app, "refused").await.test_result.contains("401"));

        admin.get(&format!("/admin/channels/{id}")).await;
        let picker = admin.post(&format!("/admin/channels/{id}/fetch-models"), &[]).await;
        assert_eq!(picker.status, 200, "{}", picker.body);
        assert!(picker.contains("value=\"fake-model\""), "the upstream's models: {}", picker.body);
        assert!(picker.contains("value=\"gpt-4o-mini\" checked"), "served ones checked: {}", picker.body);
        let saved = admin
            .post(&format!("/admin/channels/{id}/models"), &[("models", "fake-model"), ("models", "gpt-4o-mini")])
            .await;
        assert_eq!(saved.status, 303);
        assert_eq!(channel(&app, "main").await.models, vec!["fake-model", "gpt-4o-mini"]);

        let api = Api { app: &app, token: admin_token(&app, "apiadmin", "admin").await };
        let (status, body) = api.post("/api/channel-tests", json!({})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"].as_array().unwrap().len(), 2);
    }
}

db_test! {
    /// Bulk changes: previewed channel by channel (nothing changes), then applied in one go,
    /// each channel's change in the audit log; the same through `/api`, whose dry run answers
    /// the same preview; a request the page refuses the API refuses.
    async fn bulk_changes_are_previewed_then_applied(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let upstream = FakeUpstream::chat().await;
        let a = add(&app, "a", &upstream, "gpt-4o-mini").await;
        let b = add(&app, "b", &upstream, "gpt-4o-mini").await;
        let c = add(&app, "c", &upstream, "gpt-4o-mini").await;
        app.create_group("vip", "1.5").await;
        app.create_account("ada", "admin", PASSWORD).await;
        let admin = Browser::new(&app);
        admin.sign_in("ada", PASSWORD).await;
        admin.get("/admin/channels").await;

        let (a_id, b_id) = (a.to_string(), b.to_string());
        let preview = admin
            .post("/admin/channels/bulk", &[
                ("ids", &a_id), ("ids", &b_id), ("action", "set_priority"), ("priority", "9"),
                ("groups", ""), ("dry_run", "true"),
            ])
            .await;
        assert_eq!(preview.status, 200, "{}", preview.body);
        assert!(preview.contains("<code>priority</code>"), "{}", preview.body);
        assert!(preview.contains("<ins>9</ins>"), "{}", preview.body);
        assert_eq!(channel(&app, "a").await.priority, 0, "a preview changes nothing");
        let applied = admin
            .post("/admin/channels/bulk", &[
                ("ids", &a_id), ("ids", &b_id), ("action", "set_priority"), ("priority", "9"),
                ("groups", ""), ("dry_run", "false"),
            ])
            .await;
        assert_eq!(applied.status, 303, "{}", applied.body);
        assert_eq!(channel(&app, "a").await.priority, 9);
        assert_eq!(channel(&app, "b").await.priority, 9);
        assert_eq!(channel(&app, "c").await.priority, 0);
        let rows = audit(&app, "channel.bulk_update").await;
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| r.before.as_ref().unwrap()["priority"] == 0
            && r.after.as_ref().unwrap()["priority"] == 9 && r.actor == "ada"));

        // Nothing selected, an unknown group: the list's form comes back marked.
        admin.get("/admin/channels").await;
        let refused = admin
            .post("/admin/channels/bulk", &[("action", "disable"), ("priority", ""), ("groups", "")])
            .await;
        assert_eq!(refused.status, 422, "{}", refused.body);
        assert!(refused.field_error("ids").is_some(), "{}", refused.body);
        let refused = admin
            .post("/admin/channels/bulk", &[("ids", &a_id), ("action", "set_groups"), ("groups", "nope")])
            .await;
        assert_eq!(refused.status, 422, "{}", refused.body);
        assert!(refused.field_error("groups").is_some(), "{}", refused.body);
        assert_eq!(refused.input("groups").as_deref(), Some("nope"), "what was typed is kept");
        assert!(refused.contains(&format!("value=\"{a}\" id=\"select-{a}\" checked")), "{}", refused.body);
        assert!(refused.contains("value=\"set_groups\" selected"));

        let api = Api { app: &app, token: admin_token(&app, "apiadmin", "admin").await };
        let (status, body) = api.post("/api/channels/bulk", json!({"ids": [], "action": "disable"})).await;
        assert_eq!(status, 400, "{body}");
        let (status, body) = api
            .post("/api/channels/bulk", json!({"ids": [a, c], "action": "set_groups", "groups": ["default", "vip"], "dry_run": true}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["dry_run"], true);
        assert_eq!(body["changes"][0]["fields"][0]["field"], "groups");
        assert_eq!(body["changes"][0]["fields"][0]["after"], json!(["default", "vip"]));
        assert_eq!(channel(&app, "a").await.groups, vec!["default"]);
        let (status, body) = api
            .post("/api/channels/bulk", json!({"ids": [a, c], "action": "set_groups", "groups": "default,vip"}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["changed"], 2);
        assert_eq!(channel(&app, "c").await.groups, vec!["default", "vip"]);
        let (status, body) = api.post("/api/channels/bulk", json!({"ids": [b, c], "action": "delete"})).await;
        assert_eq!(status, 200, "{body}");
        assert!(tollgate::service::channels::get(app.ctx(), &CLI, "b").await.is_err());
        let deleted = audit(&app, "channel.bulk_delete").await;
        assert_eq!(deleted.len(), 2);
        assert!(deleted.iter().all(|r| r.after.is_none() && r.before.is_some()));
        no_secrets("the bulk answers", &body.to_string());
    }
}

db_test! {
    /// Copying settings: the preview shows each target's change and `updated_at`; applying
    /// refuses a target changed since; a target moved to another type or origin needs the
    /// source's keys copied too; applied in one transaction, audited per channel.
    async fn settings_are_copied_after_a_preview(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let upstream = FakeUpstream::chat().await;
        let elsewhere = FakeUpstream::chat().await;
        let source = app
            .add_channel_with(ChannelInput {
                name: Some("source".into()),
                base_url: Some(elsewhere.base_url()),
                models: Some("gpt-4o,o4-mini".into()),
                keys: Some(vec!["sk-source-key-5678".into()]),
                weight: Some(4),
                ..Default::default()
            })
            .await;
        let t1 = add(&app, "t1", &upstream, "gpt-4o-mini").await;
        let t2 = add(&app, "t2", &upstream, "gpt-4o-mini").await;
        app.create_account("ada", "admin", PASSWORD).await;
        let api = Api { app: &app, token: admin_token(&app, "apiadmin", "admin").await };

        let request = json!({"from": "source", "to": [t1, t2], "fields": ["models", "weight"], "dry_run": true});
        let (status, preview) = api.post("/api/channels/sync", request).await;
        assert_eq!(status, 200, "{preview}");
        assert_eq!(preview["changed"], 2);
        let stamps = preview["updated_at"].clone();
        assert!(stamps[t1.to_string()].is_i64(), "{preview}");
        assert_eq!(channel(&app, "t1").await.weight, 1, "a preview changes nothing");

        // t2 changes after the preview: applying it is refused, and nothing changes.
        tollgate::service::channels::update(app.ctx(), &CLI, "t2", ChannelInput { priority: Some(2), ..Default::default() })
            .await
            .unwrap();
        let apply = json!({"from": source, "to": [t1, t2], "fields": "models,weight", "updated_at": stamps});
        let (status, body) = api.post("/api/channels/sync", apply).await;
        assert_eq!(status, 409, "{body}");
        assert_eq!(channel(&app, "t1").await.weight, 1, "all or nothing");

        // Through the page: the preview carries each target's updated_at.
        let admin = Browser::new(&app);
        admin.sign_in("ada", PASSWORD).await;
        let form = admin.get("/admin/channels/sync").await;
        assert_eq!(form.status, 200);
        let (t1_id, t2_id, from) = (t1.to_string(), t2.to_string(), source.to_string());
        let preview = admin
            .post("/admin/channels/sync", &[
                ("from", &from), ("fields", "models"), ("fields", "weight"), ("to", &t1_id),
                ("to", &t2_id), ("dry_run", "true"),
            ])
            .await;
        assert_eq!(preview.status, 200, "{}", preview.body);
        assert!(preview.contains("<ins>4</ins>"), "{}", preview.body);
        let t1_row = channel(&app, "t1").await;
        assert!(preview.contains(&format!("{t1}={}", t1_row.updated_at)), "{}", preview.body);
        let stamps = format!("{t1}={}\n{t2}={}", t1_row.updated_at, channel(&app, "t2").await.updated_at);
        let applied = admin
            .post("/admin/channels/sync", &[
                ("from", &from), ("fields", "models"), ("fields", "weight"), ("to", &t1_id),
                ("to", &t2_id), ("updated_at", &stamps), ("dry_run", "false"),
            ])
            .await;
        assert_eq!(applied.status, 303, "{}", applied.body);
        let t1_row = channel(&app, "t1").await;
        assert_eq!((t1_row.weight, t1_row.models.clone()), (4, vec!["gpt-4o".to_string(), "o4-mini".to_string()]));
        assert_eq!(t1_row.secret_keys, vec![SECRET.to_string()], "keys stay");
        let rows = audit(&app, "channel.sync").await;
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| r.before.as_ref().unwrap()["weight"] == 1 && r.after.as_ref().unwrap()["weight"] == 4));

        // A changed origin without the keys: refused (page and API); with them: copied.
        let refused = admin
            .post("/admin/channels/sync", &[
                ("from", &from), ("fields", "base_url"), ("to", &t1_id), ("dry_run", "true"),
            ])
            .await;
        assert_eq!(refused.status, 422, "{}", refused.body);
        assert!(refused.contains("keys"), "{}", refused.body);
        assert!(!refused.contains("name=\"dry_run\" value=\"false\""), "no apply button: {}", refused.body);
        let (status, body) = api.post("/api/channels/sync", json!({"from": "source", "to": [t1], "fields": ["base_url"]})).await;
        assert_eq!(status, 400, "{body}");
        let (status, body) = api
            .post("/api/channels/sync", json!({"from": "source", "to": [t1], "fields": ["base_url", "keys", "extra_headers"]}))
            .await;
        assert_eq!(status, 200, "{body}");
        let t1_row = channel(&app, "t1").await;
        assert_eq!(t1_row.base_url, elsewhere.base_url());
        assert_eq!(t1_row.secret_keys, vec!["sk-source-key-5678".to_string()]);
        assert!(!body.to_string().contains("sk-source-key-5678"), "{body}");
        no_secrets("the sync's answer", &body.to_string());
        let (status, _) = api.post("/api/channels/sync", json!({"from": "source", "to": [source], "fields": ["weight"]})).await;
        assert_eq!(status, 400);
    }
}

db_test! {
    /// Export gives every channel with its keys masked; importing it elsewhere creates them
    /// disabled, "keys needed", until they get keys; importing over existing channels keeps
    /// their keys; the page and `/api` agree; every import is audited.
    async fn channels_round_trip_through_export_and_import(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let upstream = FakeUpstream::chat().await;
        add(&app, "main", &upstream, "gpt-4o-mini").await;
        app.add_channel_with(ChannelInput {
            name: Some("local".into()),
            channel_type: Some("ollama".into()),
            base_url: Some(upstream.origin()),
            keys: Some(vec![]),
            models: Some("llama3.2:3b".into()),
            ..Default::default()
        })
        .await;
        app.create_account("ada", "admin", PASSWORD).await;
        let api = Api { app: &app, token: admin_token(&app, "apiadmin", "admin").await };

        let (status, exported) = api.get("/api/channels/export").await;
        assert_eq!(status, 200, "{exported}");
        no_secrets("the export", &exported.to_string());
        assert_eq!(exported["channels"][0]["keys"], json!(["sk-****1234"]));
        assert_eq!(exported["channels"][0]["extra_headers"]["X-Org"], "****");
        let admin = Browser::new(&app);
        admin.sign_in("ada", PASSWORD).await;
        let download = admin.get("/admin/channels/export").await;
        assert_eq!(download.status, 200);
        assert!(download.headers["content-disposition"].to_str().unwrap().contains("attachment"));
        let downloaded: Value = serde_json::from_str(&download.body).unwrap();
        assert_eq!(downloaded, exported, "the page and the API export the same");

        // Imported over the same channels: keys kept, a changed weight applied.
        let mut changed = exported.clone();
        changed["channels"][0]["weight"] = json!(6);
        let (status, preview) = api
            .post("/api/channels/import", json!({"channels": changed["channels"], "dry_run": true}))
            .await;
        assert_eq!(status, 200, "{preview}");
        assert_eq!(preview["changes"][0]["change"], "update");
        assert_eq!(preview["changes"][1]["change"], "unchanged");
        let (status, body) = api.post("/api/channels/import", json!({"channels": changed["channels"]})).await;
        assert_eq!(status, 200, "{body}");
        let main = channel(&app, "main").await;
        assert_eq!((main.weight, main.secret_keys.clone()), (6, vec![SECRET.to_string()]));

        // Imported as new channels (renamed): without real keys, disabled, "keys needed".
        let mut renamed = exported.clone();
        renamed["channels"][0]["name"] = json!("main-2");
        renamed["channels"][1]["name"] = json!("local-2");
        admin.get("/admin/channels/import").await;
        let text = renamed.to_string();
        let preview = admin.post("/admin/channels/import", &[("channels", &text), ("dry_run", "true")]).await;
        assert_eq!(preview.status, 200, "{}", preview.body);
        assert!(preview.contains("main-2"));
        assert!(tollgate::service::channels::get(app.ctx(), &CLI, "main-2").await.is_err());
        let applied = admin.post("/admin/channels/import", &[("channels", &text), ("dry_run", "false")]).await;
        assert_eq!(applied.status, 303, "{}", applied.body);
        let imported = channel(&app, "main-2").await;
        assert!(imported.secret_keys.is_empty());
        assert!(imported.extra_headers.is_empty());
        assert_eq!(imported.status.as_str(), "disabled");
        assert_eq!(imported.status_reason, "keys needed");
        let local = channel(&app, "local-2").await;
        assert_eq!(local.status.as_str(), "enabled", "a channel needing no key is ready");
        let list = admin.get("/admin/channels").await;
        assert!(list.contains("Keys needed."), "{}", list.body);

        // It cannot be enabled until it has keys.
        let (status, body) = api.patch(&format!("/api/channels/{}", imported.id), json!({"status": "enabled"})).await;
        assert_eq!(status, 400, "{body}");
        let (status, body) = api.post("/api/channels/bulk", json!({"ids": [imported.id], "action": "enable"})).await;
        assert_eq!(status, 400, "{body}");
        let (status, body) = api
            .patch(&format!("/api/channels/{}", imported.id), json!({"status": "enabled", "keys": ["sk-new-key-0000"]}))
            .await;
        assert_eq!(status, 200, "{body}");

        // Unreadable text is marked on its field, kept as typed.
        let refused = admin.post("/admin/channels/import", &[("channels", "{not json"), ("dry_run", "true")]).await;
        assert_eq!(refused.status, 422);
        assert!(refused.field_error("channels").is_some(), "{}", refused.body);
        assert!(refused.contains("{not json"));
        let (status, _) = api.post("/api/channels/import", json!({"channels": []})).await;
        assert_eq!(status, 400);

        let rows = audit(&app, "channel.import").await;
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert!(rows.iter().any(|r| r.before.is_none() && r.after.as_ref().unwrap()["name"] == "main-2"));
        assert!(rows.iter().any(|r| r.before.as_ref().is_some_and(|b| b["weight"] == 1)));
    }
}

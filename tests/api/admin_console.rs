//! The admin console over real HTTP: who may see it, and its pages as admin and root.

use crate::helpers::{Browser, TestApp, db_test};

const PASSWORD: &str = "correct horse battery";

db_test! {
    /// Visitors are sent to sign in; a signed-in person who is not an administrator gets the
    /// portal's not-found page, with nothing of the console in it; admins and root get the
    /// console, and the portal's header links to it for them alone.
    async fn only_administrators_see_the_console(db: TestDb) {
        let app = TestApp::spawn(db).await;
        app.create_account("alice", "user", PASSWORD).await;
        app.create_account("ada", "admin", PASSWORD).await;
        app.create_account("ruth", "root", PASSWORD).await;

        let visitor = Browser::new(&app);
        let sent = visitor.get("/admin").await;
        assert_eq!(sent.status, 303);
        assert_eq!(sent.location.as_deref(), Some("/login?next=/admin"));

        let alice = Browser::new(&app);
        alice.sign_in("alice", PASSWORD).await;
        let refused = alice.get("/admin").await;
        assert_eq!(refused.status, 404, "{}", refused.body);
        assert!(!refused.body.contains("/admin/"), "nothing of the console: {}", refused.body);
        assert!(!refused.body.contains("console-nav"), "{}", refused.body);
        assert!(!alice.get("/dashboard").await.body.contains("href=\"/admin\""));

        for name in ["ada", "ruth"] {
            let admin = Browser::new(&app);
            admin.sign_in(name, PASSWORD).await;
            let console = admin.get("/admin").await;
            assert_eq!(console.status, 200, "{}", console.body);
            assert!(console.body.contains("href=\"/admin/channels\""), "{}", console.body);
            assert!(admin.get("/dashboard").await.body.contains("href=\"/admin\""));
        }
    }
}

use modal_runtime::app;

struct Connection {
    url: String,
}

#[app::cls]
struct Client {
    #[app::parameter]
    url: String,
    connection: Connection,
}

#[app::cls]
impl Client {
    #[app::method]
    fn url(&self) -> String {
        format!("{} {}", self.url, self.connection.url)
    }
}

fn main() {}

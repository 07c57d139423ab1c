use modal_runtime::app;

#[app::function]
#[app::web_endpoint(raw)]
fn raw_string(request: String) -> String {
    request
}

fn main() {}

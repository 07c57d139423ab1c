use modal_runtime::app;

#[app::function]
#[app::web_endpoint(method = "TRACE")]
fn bad_method(x: u64) -> u64 {
    x
}

#[app::function]
#[app::web_endpoint(label = "Not_A_Label")]
fn bad_label(x: u64) -> u64 {
    x
}

#[app::function]
#[app::web_endpoint(lable = "x")]
fn unknown_option(x: u64) -> u64 {
    x
}

#[app::function]
#[app::web_endpoint(raw, method = "GET")]
fn raw_with_method(request: modal_runtime::web::http::Request<modal_runtime::web::Bytes>) -> modal_runtime::web::http::Response<modal_runtime::web::Bytes> {
    modal_runtime::web::http::Response::new(request.into_body())
}

#[app::function(name = "_9_lives")]
#[app::web_endpoint]
fn label_from_a_bad_name(x: u64) -> u64 {
    x
}

fn main() {}

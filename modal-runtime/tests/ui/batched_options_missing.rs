use modal_runtime::app;

#[app::function]
#[app::batched(max_batch_size = 8)]
fn embed(texts: Vec<String>) -> Vec<usize> {
    texts.iter().map(String::len).collect()
}

#[app::function]
#[app::batched]
fn shout(texts: Vec<String>) -> Vec<String> {
    texts.iter().map(|t| t.to_uppercase()).collect()
}

fn main() {}

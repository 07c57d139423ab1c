mod images {
    use modal_runtime::app;

    #[app::function]
    pub fn resize(width: u32) -> u32 {
        width
    }
}

mod video {
    use modal_runtime::app;

    #[app::function(name = "resize")]
    pub fn scale(width: u32) -> u32 {
        width
    }
}

fn main() {}

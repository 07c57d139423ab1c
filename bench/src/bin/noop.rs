//! Does nothing: the Docker floor runs it, linked statically, in a
//! `FROM scratch` image with `docker run --rm`.

fn main() {}

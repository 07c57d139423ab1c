//! Cutting a container's output into lines, however it arrives.

/// Longest line forwarded from a container (16 KiB): a longer one is cut
/// into pieces of this size, so that output without line ends never grows
/// the control plane's memory and a batch of log lines stays well under the
/// message limit.
pub(crate) const MAX_LINE_BYTES: usize = 16 << 10;

/// Collects chunks of output and hands back the complete lines in them
/// (without their ends), and pieces of [`MAX_LINE_BYTES`] of longer ones.
#[derive(Default)]
pub(crate) struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    pub(crate) fn push(&mut self, mut bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        while !bytes.is_empty() {
            let room = MAX_LINE_BYTES - self.partial.len();
            let window = &bytes[..bytes.len().min(room)];
            match window.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    self.partial.extend_from_slice(&window[..end]);
                    bytes = &bytes[end + 1..];
                    let mut line = std::mem::take(&mut self.partial);
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    lines.push(line);
                }
                None => {
                    self.partial.extend_from_slice(window);
                    bytes = &bytes[window.len()..];
                    if self.partial.len() == MAX_LINE_BYTES {
                        lines.push(std::mem::take(&mut self.partial));
                    }
                }
            }
        }
        lines
    }

    /// What is left once the output has ended.
    pub(crate) fn finish(self) -> Option<Vec<u8>> {
        (!self.partial.is_empty()).then_some(self.partial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_chunks_come_out_whole() {
        let mut s = LineSplitter::default();
        assert_eq!(s.push(b"ab"), Vec::<Vec<u8>>::new());
        assert_eq!(
            s.push(b"c\r\nd\n\ne"),
            vec![b"abc".to_vec(), b"d".to_vec(), vec![]]
        );
        assert_eq!(s.finish(), Some(b"e".to_vec()));
    }

    #[test]
    fn a_long_line_is_cut_into_pieces() {
        let mut s = LineSplitter::default();
        let long = vec![b'x'; MAX_LINE_BYTES * 2 + 10];
        let lines = s.push(&[long.as_slice(), b"\nend\n"].concat());
        let sizes: Vec<usize> = lines.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![MAX_LINE_BYTES, MAX_LINE_BYTES, 10, 3]);
        assert_eq!(s.finish(), None);
    }
}

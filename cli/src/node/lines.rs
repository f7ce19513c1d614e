//! Command lines from stdin, bounded: a line longer than [`MAX_LINE`] is
//! refused (and skipped to its end) before it is buffered whole, and bytes
//! that are not UTF-8 are an error for that line only.

use std::io::{self, BufRead};

/// The longest command line: a put of the largest value (64 KiB) with its
/// prefix and key, base64-encoded in `--json` mode, with room to spare.
pub(crate) const MAX_LINE: usize = 256 * 1024;

/// One line read: the command, or why it cannot be one.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// A line of text, without its end.
    Text(String),
    /// A line that is not UTF-8.
    NotUtf8,
    /// A line longer than the limit (skipped to its end).
    TooLong,
}

/// Reads the next line of `input`, at most `max` bytes of it buffered;
/// `None` at the end of input.
pub(crate) fn next_line(input: &mut impl BufRead, max: usize) -> io::Result<Option<Line>> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            return Ok((!line.is_empty() || too_long).then(|| finish(line, too_long)));
        }
        let (take, ended) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        if !too_long {
            // The line's end does not count against the limit.
            if line.len() + take - usize::from(ended) > max {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(&chunk[..take]);
            }
        }
        input.consume(take);
        if ended {
            return Ok(Some(finish(line, too_long)));
        }
    }
}

fn finish(mut line: Vec<u8>, too_long: bool) -> Line {
    if too_long {
        return Line::TooLong;
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    match String::from_utf8(line) {
        Ok(text) => Line::Text(text),
        Err(_) => Line::NotUtf8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(bytes: &[u8], max: usize) -> Vec<Line> {
        // A tiny buffer, so lines span many reads.
        let mut input = io::BufReader::with_capacity(3, bytes);
        std::iter::from_fn(|| next_line(&mut input, max).unwrap()).collect()
    }

    #[test]
    fn lines_are_bounded_and_bad_bytes_spoil_only_their_line() {
        let got = all(b"put a b c\r\nget a b\n\xff\xfe\nxxxxxxxxxxxx\nmembers", 10);
        assert_eq!(
            got,
            [
                Line::Text("put a b c".into()),
                Line::Text("get a b".into()),
                Line::NotUtf8,
                Line::TooLong,
                Line::Text("members".into()),
            ]
        );
        assert_eq!(all(b"", 10), []);
        assert_eq!(all(b"0123456789\n", 10), [Line::Text("0123456789".into())]);
        assert_eq!(all(b"0123456789x", 10), [Line::TooLong]);
    }
}

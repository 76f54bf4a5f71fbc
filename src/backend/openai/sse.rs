//! Server-sent events, as OpenAI-compatible servers stream a chat completion: `data:`
//! lines grouped into events by blank lines, `:` comments, `[DONE]` at the end.

use std::io::BufRead;

/// Longest line accepted; a longer one is not a chat stream.
const MAX_LINE: u64 = 1 << 20;

/// One event of the stream.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// The `data` of an event (its lines joined by `\n`).
    Data(String),
    /// An `error:` field (llama.cpp's server reports failures this way).
    Error(String),
}

/// Why the stream could not be read.
#[derive(Debug)]
pub(crate) enum SseError {
    /// Reading failed (timeout, reset connection).
    Io(std::io::Error),
    /// Not an event stream: the line (its start) that is not `field: value`.
    Malformed(String),
}

/// Reads events from a byte stream.
pub(crate) struct SseReader<R> {
    r: R,
    line: Vec<u8>,
}

impl<R: BufRead> SseReader<R> {
    /// Events of `r`.
    pub(crate) fn new(r: R) -> Self {
        SseReader { r, line: Vec::new() }
    }

    /// The next event, `None` at the end of the stream.
    pub(crate) fn next_event(&mut self) -> Result<Option<Event>, SseError> {
        let mut data: Option<String> = None;
        loop {
            self.line.clear();
            let n = std::io::Read::take(&mut self.r, MAX_LINE)
                .read_until(b'\n', &mut self.line)
                .map_err(SseError::Io)?;
            if n == 0 {
                return Ok(data.map(Event::Data));
            }
            if self.line.last() != Some(&b'\n') && n as u64 == MAX_LINE {
                return Err(SseError::Malformed(format!("a line longer than {MAX_LINE} bytes")));
            }
            let text = std::str::from_utf8(&self.line)
                .map_err(|_| SseError::Malformed("bytes that are not UTF-8".into()))?;
            let text = text.trim_end_matches(['\n', '\r']);
            if text.is_empty() {
                match data.take() {
                    Some(d) => return Ok(Some(Event::Data(d))),
                    None => continue,
                }
            }
            if text.starts_with(':') {
                continue;
            }
            let (field, value) = match text.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (text, ""),
            };
            match field {
                "data" => match &mut data {
                    Some(d) => {
                        d.push('\n');
                        d.push_str(value);
                    }
                    None => data = Some(value.to_string()),
                },
                "error" => return Ok(Some(Event::Error(value.to_string()))),
                "event" | "id" | "retry" => {}
                _ => return Err(SseError::Malformed(snippet(text))),
            }
        }
    }
}

/// The start of a line, for an error message (one line, at most 60 characters).
pub(crate) fn snippet(text: &str) -> String {
    let one: String = text.chars().filter(|c| !c.is_control()).take(60).collect();
    if text.chars().count() > 60 {
        format!("{one}…")
    } else {
        one
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(s: &str) -> Vec<Result<Event, String>> {
        let mut r = SseReader::new(s.as_bytes());
        let mut out = Vec::new();
        loop {
            match r.next_event() {
                Ok(Some(e)) => out.push(Ok(e)),
                Ok(None) => break,
                Err(SseError::Malformed(m)) => {
                    out.push(Err(m));
                    break;
                }
                Err(SseError::Io(e)) => panic!("{e}"),
            }
        }
        out
    }

    #[test]
    fn data_events_comments_and_done() {
        let got =
            events(": ping\r\n\r\ndata: {\"a\":1}\r\n\r\ndata:x\ndata: y\n\ndata: [DONE]\n\n");
        assert_eq!(
            got,
            vec![
                Ok(Event::Data("{\"a\":1}".into())),
                Ok(Event::Data("x\ny".into())),
                Ok(Event::Data("[DONE]".into()))
            ]
        );
        // A stream cut after a data line still yields it.
        assert_eq!(events("data: 1"), vec![Ok(Event::Data("1".into()))]);
        assert_eq!(events("error: {\"m\":1}\n"), vec![Ok(Event::Error("{\"m\":1}".into()))]);
    }

    #[test]
    fn html_is_not_an_event_stream() {
        let got = events("<html><body>Bad gateway</body></html>\n");
        assert_eq!(got, vec![Err("<html><body>Bad gateway</body></html>".into())]);
    }
}

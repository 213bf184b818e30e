//! The HTTP/1.1 framing the [`FaultProxy`](super::FaultProxy) reads: request heads and bodies
//! (`Content-Length` or chunked), and the end of an answer's head.

/// Request heads longer than this are not parsed (the bytes still pass).
pub(super) const MAX_HEAD: usize = 256 * 1024;

/// Finds the end of an answer's head (`\r\n\r\n`) across reads.
#[derive(Debug, Default)]
pub(super) struct HeadEnd {
    pub(super) matched: usize,
    pub(super) done: bool,
}

impl HeadEnd {
    /// Feeds head bytes; returns the offset in `data` where the body starts, once found.
    pub(super) fn feed(&mut self, data: &[u8]) -> Option<usize> {
        const END: &[u8; 4] = b"\r\n\r\n";
        for (i, byte) in data.iter().enumerate() {
            if *byte == END[self.matched] {
                self.matched += 1;
                if self.matched == END.len() {
                    self.done = true;
                    return Some(i + 1);
                }
            } else {
                self.matched = usize::from(*byte == b'\r');
            }
        }
        None
    }
}

/// A piece of the client's byte stream: a complete request head (with its request line), or
/// other bytes (bodies, chunk framing).
#[derive(Debug)]
pub(super) struct Part {
    pub(super) head: Option<String>,
    pub(super) data: Vec<u8>,
    /// Whether this piece ends a request.
    pub(super) end: bool,
}

#[derive(Debug, Default)]
pub(super) enum RequestState {
    #[default]
    Head,
    Body(u64),
    ChunkSize,
    ChunkData(u64),
    Trailer,
    /// A head too long to parse: pass everything through unparsed.
    Opaque,
}

/// Splits the client's bytes into request heads and the rest, following `Content-Length`
/// and chunked bodies.
#[derive(Debug, Default)]
pub(super) struct RequestParser {
    state: RequestState,
    pending: Vec<u8>,
}

impl RequestParser {
    pub(super) fn feed(&mut self, mut data: &[u8], out: &mut Vec<Part>) {
        let body = |out: &mut Vec<Part>, bytes: &[u8], end: bool| {
            if !bytes.is_empty() || end {
                out.push(Part {
                    head: None,
                    data: bytes.to_vec(),
                    end,
                });
            }
        };
        while !data.is_empty() {
            match self.state {
                RequestState::Opaque => {
                    body(out, data, false);
                    return;
                }
                RequestState::Head => {
                    let Some(end) = self.take_until(&mut data, b"\r\n\r\n") else {
                        if self.pending.len() > MAX_HEAD {
                            body(out, &std::mem::take(&mut self.pending), false);
                            self.state = RequestState::Opaque;
                        }
                        continue;
                    };
                    let head = std::mem::take(&mut self.pending);
                    debug_assert_eq!(end, head.len());
                    let (line, next) = parse_head(&head);
                    let end = matches!(next, RequestState::Head);
                    self.state = next;
                    out.push(Part {
                        head: Some(line),
                        data: head,
                        end,
                    });
                }
                RequestState::Body(left) | RequestState::ChunkData(left) => {
                    let take = (left.min(data.len() as u64)) as usize;
                    let left = left - take as u64;
                    let end = left == 0 && matches!(self.state, RequestState::Body(_));
                    body(out, &data[..take], end);
                    data = &data[take..];
                    self.state = match (&self.state, left) {
                        (RequestState::Body(_), 0) => RequestState::Head,
                        (RequestState::Body(_), n) => RequestState::Body(n),
                        (_, 0) => RequestState::ChunkSize,
                        (_, n) => RequestState::ChunkData(n),
                    };
                }
                RequestState::ChunkSize => {
                    if self.take_until(&mut data, b"\r\n").is_none() {
                        continue;
                    }
                    let line = std::mem::take(&mut self.pending);
                    let text = String::from_utf8_lossy(&line);
                    let size = text
                        .split([';', '\r'])
                        .next()
                        .and_then(|s| u64::from_str_radix(s.trim(), 16).ok());
                    body(out, &line, false);
                    self.state = match size {
                        Some(0) => RequestState::Trailer,
                        // The chunk's data and the CRLF after it.
                        Some(n) => RequestState::ChunkData(n + 2),
                        None => RequestState::Opaque,
                    };
                }
                RequestState::Trailer => {
                    if self.take_until(&mut data, b"\r\n").is_none() {
                        continue;
                    }
                    let line = std::mem::take(&mut self.pending);
                    let end = line == b"\r\n";
                    body(out, &line, end);
                    if end {
                        self.state = RequestState::Head;
                    }
                }
            }
        }
    }

    /// Moves bytes from `data` into `pending` up to and including `end`; returns the length
    /// of `pending` when `end` was reached, `None` when `data` ran out first.
    fn take_until(&mut self, data: &mut &[u8], end: &[u8]) -> Option<usize> {
        while let Some((&byte, rest)) = data.split_first() {
            self.pending.push(byte);
            *data = rest;
            if self.pending.ends_with(end) {
                return Some(self.pending.len());
            }
        }
        None
    }
}

/// The request line of a head and what follows it.
pub(super) fn parse_head(head: &[u8]) -> (String, RequestState) {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or_default().to_string();
    let mut length: u64 = 0;
    let mut chunked = false;
    for header in lines {
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().unwrap_or(0);
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().contains("chunked")
        {
            chunked = true;
        }
    }
    let next = if chunked {
        RequestState::ChunkSize
    } else if length > 0 {
        RequestState::Body(length)
    } else {
        RequestState::Head
    };
    (line, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(chunks: &[&[u8]]) -> Vec<(Option<String>, Vec<u8>)> {
        let mut parser = RequestParser::default();
        let mut out = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, &mut out);
        }
        out.into_iter().map(|p| (p.head, p.data)).collect()
    }

    /// Whether each part ends its request.
    fn ends(chunks: &[&[u8]]) -> Vec<bool> {
        let mut parser = RequestParser::default();
        let mut out = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, &mut out);
        }
        out.into_iter().map(|p| p.end).collect()
    }

    #[test]
    fn the_last_part_of_each_request_is_marked() {
        // A head without a body ends its request; a body ends with its last byte (across
        // reads); a chunked body ends with its trailer's empty line.
        assert_eq!(
            ends(&[
                b"GET /v2/ HTTP/1.1\r\n\r\nPUT /x HTTP/1.1\r\nContent-Length: 4\r\n\r\nab",
                b"cd",
                b"PATCH /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
            ]),
            [true, false, false, true, false, false, false, false, true]
        );
    }

    #[test]
    fn request_heads_are_found_across_reads_and_bodies_are_skipped() {
        let parts = parse(&[
            b"PUT /v2/a/blobs/uploads/x?digest=sha256:1 HTTP/1.1\r\nContent-Length: 11\r\n\r\nGET /v2/ x",
            b"yPOST /v2/a/blobs/uploads/ HTTP/1.1\r\nhost: h\r",
            b"\n\r\n",
            b"HEAD /v2/a/manifests/v1 HTTP/1.1\r\n\r\n",
        ]);
        let heads: Vec<String> = parts.iter().filter_map(|(h, _)| h.clone()).collect();
        assert_eq!(
            heads,
            [
                "PUT /v2/a/blobs/uploads/x?digest=sha256:1 HTTP/1.1",
                "POST /v2/a/blobs/uploads/ HTTP/1.1",
                "HEAD /v2/a/manifests/v1 HTTP/1.1",
            ]
        );
        let body: Vec<u8> = parts
            .iter()
            .filter(|(h, _)| h.is_none())
            .flat_map(|(_, d)| d.clone())
            .collect();
        assert_eq!(body, b"GET /v2/ xy");
    }

    #[test]
    fn chunked_bodies_are_followed() {
        let parts = parse(&[
            b"PATCH /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nGET /\r\n0\r\n\r\nGET /v2/ HTTP/1.1\r\n\r\n",
        ]);
        let heads: Vec<String> = parts.iter().filter_map(|(h, _)| h.clone()).collect();
        assert_eq!(heads, ["PATCH /u HTTP/1.1", "GET /v2/ HTTP/1.1"]);
    }

    #[test]
    fn the_end_of_an_answer_head_is_found_across_reads() {
        let mut head = HeadEnd::default();
        assert_eq!(head.feed(b"HTTP/1.1 200 OK\r\nA: b\r\n\r"), None);
        assert_eq!(head.feed(b"\nbody"), Some(1));
        assert!(head.done);
    }
}

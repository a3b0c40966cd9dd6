/// Renders an HTTP/1.1 status line and header section into bytes in one pass (h2o style).
public enum ResponseHeadSerializer {
    /// Appends the head to `out`.
    /// - Parameters:
    ///   - status: the status code.
    ///   - fields: the handler's fields (must not contain Content-Length, Transfer-Encoding,
    ///     Connection or Date; the server owns those).
    ///   - contentLength: the body length, or nil for a chunked body.
    ///   - keepAlive: false adds `Connection: close`.
    ///   - announceKeepAlive: with `keepAlive`, adds `Connection: keep-alive` (what an HTTP/1.0
    ///     client needs to keep the connection open, RFC 9112 §C.2.2).
    ///   - date: the IMF-fixdate for the Date field.
    public static func write(
        status: Int, fields: HTTPFields, contentLength: Int?, keepAlive: Bool, announceKeepAlive: Bool = false,
        date: String, into out: inout [UInt8]
    ) {
        out.append(contentsOf: "HTTP/1.1 ".utf8)
        appendDecimal(status, to: &out)
        out.append(0x20)
        out.append(contentsOf: HTTPStatusText.reason(status).utf8)
        out.append(contentsOf: "\r\nDate: ".utf8)
        out.append(contentsOf: date.utf8)
        out.append(contentsOf: "\r\n".utf8)
        for field in fields {
            out.append(contentsOf: field.name.utf8)
            out.append(contentsOf: ": ".utf8)
            out.append(contentsOf: field.value.utf8)
            out.append(contentsOf: "\r\n".utf8)
        }
        if let contentLength {
            if HTTPStatusText.carriesContent(status) {
                out.append(contentsOf: "Content-Length: ".utf8)
                appendDecimal(contentLength, to: &out)
                out.append(contentsOf: "\r\n".utf8)
            }
        } else {
            out.append(contentsOf: "Transfer-Encoding: chunked\r\n".utf8)
        }
        if !keepAlive {
            out.append(contentsOf: "Connection: close\r\n".utf8)
        } else if announceKeepAlive {
            out.append(contentsOf: "Connection: keep-alive\r\n".utf8)
        }
        out.append(contentsOf: "\r\n".utf8)
    }

    /// Appends the decimal digits of a non-negative integer.
    public static func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        if value < 10 {
            out.append(UInt8(truncatingIfNeeded: value) &+ 0x30)
            return
        }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = max(0, value), count = 0
        withUnsafeMutableBytes(of: &digits) { buf in
            while n > 0 {
                buf[count] = UInt8(truncatingIfNeeded: n % 10) &+ 0x30
                n /= 10
                count += 1
            }
            for k in stride(from: count - 1, through: 0, by: -1) { out.append(buf[k]) }
        }
    }
}

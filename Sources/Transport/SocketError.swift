#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed socket call, with the errno that explains it.
public struct SocketError: Error, CustomStringConvertible, Sendable {
    /// The call that failed ("bind", "listen", …).
    public let call: String
    /// The errno value.
    public let errno: Int32

    /// Captures the current errno for `call`.
    static func last(_ call: String) -> SocketError {
        SocketError(call: call, errno: currentErrno())
    }

    /// Creates an error for a given errno.
    public init(call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    public var description: String {
        "\(call) failed: \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// The calling thread's errno.
@inline(__always)
func currentErrno() -> Int32 {
    #if canImport(Glibc)
    Glibc.errno
    #else
    Darwin.errno
    #endif
}

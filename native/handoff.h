// Hand-off of a connected socket to another process over a Unix domain socket: one message of metadata
// bytes with the descriptor attached as SCM_RIGHTS (what Node's net module cannot do). Pure C++, no Node.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "sock.h"

namespace onionpunch {

/** Longest metadata message send_fd() accepts (ImportPeerSocketV1 is 12 bytes). */
constexpr size_t kMaxHandoffMeta = 256;

/**
 * Connects to the Unix stream socket at `path` (a leading '@' names an abstract socket), sends `meta` as one
 * message carrying a duplicate of `fd` (SCM_RIGHTS), and closes the connection. Never blocks: the socket is
 * non-blocking, so a receiver whose backlog is full gives EAGAIN instead of a wait. The caller keeps its own
 * `fd` (and closes it when it likes: the receiver's copy is independent). Returns no error, or errno + call.
 */
SysError send_fd(const std::string& path, int fd, const uint8_t* meta, size_t meta_len);

}  // namespace onionpunch

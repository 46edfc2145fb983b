#include "handoff.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

namespace onionpunch {

SysError send_fd(const std::string& path, int fd, const uint8_t* meta, size_t meta_len) {
  if (fd < 0) return {EBADF, Syscall::Sendmsg};
  if (meta_len == 0 || meta_len > kMaxHandoffMeta) return {EMSGSIZE, Syscall::Sendmsg};
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  bool abstract = !path.empty() && path[0] == '@';
  if (path.empty() || path.size() >= sizeof sa.sun_path || path.find('\0') != std::string::npos) {
    return {ENAMETOOLONG, Syscall::Connect};
  }
  memcpy(sa.sun_path, path.data(), path.size());
  if (abstract) sa.sun_path[0] = '\0';
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (abstract ? 0 : 1));

  Fd s(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!s) return {errno, Syscall::Socket};
  if (connect(s.get(), reinterpret_cast<const sockaddr*>(&sa), len) != 0) return {errno, Syscall::Connect};

  iovec iov{};
  iov.iov_base = const_cast<uint8_t*>(meta);
  iov.iov_len = meta_len;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof(int));
  ssize_t n = sendmsg(s.get(), &msg, MSG_NOSIGNAL);
  if (n < 0) return {errno, Syscall::Sendmsg};
  // A fresh stream connection takes a 12-byte message whole; anything less would split the header.
  if (static_cast<size_t>(n) != meta_len) return {EMSGSIZE, Syscall::Sendmsg};
  return {};
}

}  // namespace onionpunch

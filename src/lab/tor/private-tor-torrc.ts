/**
 * torrc text for each role of the private Tor network (facts in PRIVATE-TOR.md: TestingTorNetwork with one
 * authority, three relays, a client hosting the onion service and a client dialing it).
 */

/** What every torrc needs to know about the authority. */
export interface AuthorityRef {
  nickname: string;
  ip: string;
  orPort: number;
  dirPort: number;
  /** v3 identity fingerprint (the certificate's `fingerprint` line). */
  v3ident: string;
  /** RSA identity fingerprint, 40 hex digits. */
  fingerprint: string;
}

export interface CommonTorrc {
  nickname: string;
  dataDir: string;
  ownerPid: number;
  authority: AuthorityRef;
}

function common(c: CommonTorrc): string[] {
  const a = c.authority;
  return [
    'TestingTorNetwork 1',
    `DataDirectory ${c.dataDir}`,
    `Nickname ${c.nickname}`,
    'RunAsDaemon 0',
    'ShutdownWaitLength 0',
    `Log notice file ${c.dataDir}/notice.log`,
    // GeoIP costs ~34 MB and seconds of CPU per process and is useless on a private network.
    'GeoIPFile ""',
    'GeoIPv6File ""',
    // tor exits by itself when the controlling process dies (checked every 15 s).
    `__OwningControllerProcess ${c.ownerPid}`,
    `DirAuthority ${a.nickname} orport=${a.orPort} v3ident=${a.v3ident} ${a.ip}:${a.dirPort} ${a.fingerprint}`,
  ];
}

function relayLines(ip: string, orPort: number): string[] {
  return [
    'SocksPort 0',
    `ORPort ${ip}:${orPort}`,
    `Address ${ip}`,
    'AssumeReachable 1',
    'ExitRelay 0',
    'ExitPolicy reject *:*',
    'ContactInfo onionpunch-lab@localhost',
    'FetchDirInfoEarly 1',
    'FetchDirInfoExtraEarly 1',
  ];
}

/** The directory authority (also a relay), with the short voting intervals of a test network. */
export function authorityTorrc(c: CommonTorrc): string {
  const a = c.authority;
  return [
    ...common(c),
    ...relayLines(a.ip, a.orPort),
    `DirPort ${a.ip}:${a.dirPort}`,
    'AuthoritativeDirectory 1',
    'V3AuthoritativeDirectory 1',
    'TestingV3AuthInitialVotingInterval 5',
    'TestingV3AuthInitialVoteDelay 2',
    'TestingV3AuthInitialDistDelay 2',
    'V3AuthVotingInterval 10',
    'V3AuthVoteDelay 2',
    'V3AuthDistDelay 2',
    'V3AuthNIntervalsValid 2',
    'TestingDirAuthVoteGuard *',
    'TestingDirAuthVoteHSDir *',
    'AuthDirVoteStableGuaranteeMinUptime 0',
    'AuthDirVoteStableGuaranteeMTBF 0',
    'AuthDirFastGuarantee 1 bytes',
    '',
  ].join('\n');
}

export function relayTorrc(c: CommonTorrc, ip: string, orPort: number): string {
  return [...common(c), ...relayLines(ip, orPort), ''].join('\n');
}

/** Client lines shared by A and B: no entry guards (vanguards-lite loops on 4 relays), wait for 95% of paths. */
const CLIENT = ['UseEntryGuards 0', 'PathsNeededToBuildCircuits 0.95'];

/** Node A: ControlPort (cookie or hashed password), hosts the onion services; no SOCKS. */
export function clientATorrc(c: CommonTorrc, control: { host: string; port: number; hashedPassword?: string }): string {
  return [
    ...common(c),
    'SocksPort 0',
    `ControlPort ${control.host}:${control.port}`,
    control.hashedPassword ? `HashedControlPassword ${control.hashedPassword}` : 'CookieAuthentication 1',
    ...CLIENT,
    '',
  ].join('\n');
}

/** Node B: SocksPort with tor's extended onion-service errors. */
export function clientBTorrc(c: CommonTorrc, socks: { host: string; port: number }): string {
  return [
    ...common(c),
    `SocksPort ${socks.host}:${socks.port} ExtendedErrors`,
    // tor can park a stream to an onion whose intro points all refused (waiting for a descriptor refetch) until
    // SocksTimeout (default 120 s); it then answers with the extended error it recorded (e.g. 0xF2).
    'SocksTimeout 30',
    ...CLIENT,
    '',
  ].join('\n');
}

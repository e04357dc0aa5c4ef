// Errors raised by the server layer (not the MVCC store). Their messages are the
// internal names; src/api/errors.ts maps every internal message to etcd's gRPC code and text.

export class ServerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ServerError';
  }
}

export const Errors = {
  noLeader: () => new ServerError('no leader'),
  notLeader: () => new ServerError('not leader'),
  leaderChanged: () => new ServerError('leader changed'),
  timeout: () => new ServerError('request timed out'),
  timeoutLeaderFail: () => new ServerError('request timed out, possibly due to previous leader failure'),
  timeoutLostConn: () => new ServerError('request timed out, possibly due to connection lost'),
  tooManyRequests: () => new ServerError('too many requests'),
  requestTooLarge: () => new ServerError('request is too large'),
  stopped: () => new ServerError('server stopped'),
  noSpace: () => new ServerError('mvcc: database space exceeded'),
  leaseNotFound: () => new ServerError('lease not found'),
  leaseExists: () => new ServerError('lease already exists'),
  leaseTtlTooLarge: () => new ServerError('too large lease TTL'),
  memberNotFound: () => new ServerError('member not found'),
  memberIdExists: () => new ServerError('member ID already exist'),
  peerUrlExists: () => new ServerError('Peer URLs already exists'),
  unhealthy: (why: string) => Object.assign(new ServerError('unhealthy cluster'), { detail: why }),
  notEnoughStarted: () => new ServerError('re-configuration failed due to not enough started members'),
  learnerNotReady: () => new ServerError('can only promote a learner member which is in sync with leader'),
  memberNotLearner: () => new ServerError('can only promote a learner member'),
  tooManyLearners: () => new ServerError('too many learner members in cluster'),
  badLeaderTransferee: () => new ServerError('bad leader transferee'),
  learnerNotSupported: () => new ServerError('rpc not supported for learner'),
  corrupt: () => new ServerError('corrupt cluster'),
  unknownMethod: () => new ServerError('unknown method'),
};

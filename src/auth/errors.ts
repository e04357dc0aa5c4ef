// Errors of the auth layer. Each message is the internal name that src/api/errors.ts maps
// to etcd's gRPC status and exact client-visible text (clients match on those strings:
// clientv3 re-authenticates on "invalid auth token" and "revision of auth store is old").

export class AuthError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuthError';
  }
}

export const AuthErrors = {
  rootUserNotExist: () => new AuthError('root user does not exist'),
  rootRoleNotExist: () => new AuthError('root user does not have root role'),
  userAlreadyExist: () => new AuthError('user name already exists'),
  userEmpty: () => new AuthError('user name is empty'),
  userNotFound: () => new AuthError('user name not found'),
  roleAlreadyExist: () => new AuthError('role name already exists'),
  roleNotFound: () => new AuthError('role name not found'),
  roleEmpty: () => new AuthError('role name is empty'),
  authFailed: () => new AuthError('authentication failed, invalid user ID or password'),
  /** etcd 3.4 answers this one with code Unknown and the auth package's own text. */
  noPasswordUser: () => new AuthError('auth: authentication failed, password was given for no password user'),
  permissionDenied: () => new AuthError('permission denied'),
  roleNotGranted: () => new AuthError('role is not granted to the user'),
  permissionNotGranted: () => new AuthError('permission is not granted to the role'),
  authNotEnabled: () => new AuthError('authentication is not enabled'),
  invalidAuthToken: () => new AuthError('invalid auth token'),
  invalidAuthMgmt: () => new AuthError('invalid auth management'),
  authOldRevision: () => new AuthError('revision of auth store is old'),
  /** A hashedPassword (etcd 3.5+ clients) that is not a bcrypt hash. */
  invalidHashedPassword: () => new AuthError('auth: invalid hashed password'),
  /** --auth-token jwt with only a public key: this member can verify tokens but not issue them. */
  verifyOnly: () => new AuthError('auth: token signing attempted with verify-only key'),
};

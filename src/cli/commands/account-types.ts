/** An account as the admin API shows it. */
export interface AccountJson {
  commonId: string;
  name: string;
  email: string | null;
  affiliation: string;
  status: string;
  mustChangePassword: boolean;
  passwordSetAt: string;
  createdAt: string;
}

/** What creating an account or reissuing its password answers; the password is shown once. */
export interface IssuedJson {
  commonId: string;
  initialPassword: string;
  account: AccountJson;
}
